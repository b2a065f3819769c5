"""Registered multipliers: how a dot product's lane turns (x, w) into x*w two cycles later.

The dot product is written against this small interface and is given the
implementation, so the same generator runs in every simulator and still
reaches the ECP5's DSP blocks at speed:

* :class:`FabricMultiplier` registers the operands and the product in
  ordinary flip-flops.  Every simulator runs it; yosys maps the product to a
  MULT18X18D but leaves both registers in the fabric (it packs no DSP
  registers on the ECP5), so each product crosses the routing twice between
  flip-flops and the DSP, the critical path of large networks.
* :class:`Ecp5Mult18` instantiates MULT18X18D with its own input registers
  and output register switched on, always enabled (the dot product's pipeline
  never stalls), so the multiplier's delay sits between the DSP's own
  registers.  Only yosys/nextpnr for an ECP5 know the cell.
"""

from __future__ import annotations

from typing import Protocol

from amaranth import ClockSignal, Const, Instance, Module, Signal, Value, signed

__all__ = ["Multiplier", "FabricMultiplier", "Ecp5Mult18", "FABRIC", "ECP5_MULT18", "MULTIPLIER_LATENCY"]

#: cycles from (x, w) to their product: the operand register, then the product register
MULTIPLIER_LATENCY = 2


class Multiplier(Protocol):
    """``registered_product(m, x, w, name)`` returns a value equal to ``x * w`` of two cycles before."""

    name: str

    def registered_product(self, m: Module, x: Value, w: Value, name: str) -> Value: ...

    def simulation_sources(self) -> dict[str, str]:
        """Verilog a simulator needs beside the design (file name -> text); empty for plain logic."""
        ...


class FabricMultiplier:
    """Operand and product registers as flip-flops; the product as ``*`` (any simulator, any part)."""

    name = "fabric"

    def registered_product(self, m: Module, x: Value, w: Value, name: str) -> Value:
        xr = Signal(x.shape(), name=f"{name}_x")
        wr = Signal(w.shape(), name=f"{name}_w")
        p = Signal(signed(len(x) + len(w)), name=f"{name}_p")
        m.d.sync += [xr.eq(x), wr.eq(w), p.eq(xr * wr)]
        return p

    def simulation_sources(self) -> dict[str, str]:
        return {}


class Ecp5Mult18:
    """A MULT18X18D with REG_INPUTA, REG_INPUTB and REG_OUTPUT on CLK0, CE0 tied high, no reset.

    Operands wider than 18 bits do not fit one block; those lanes fall back to
    :class:`FabricMultiplier` (yosys then builds the product from several).
    """

    name = "ecp5"
    width = 18

    def registered_product(self, m: Module, x: Value, w: Value, name: str) -> Value:
        if len(x) > self.width or len(w) > self.width:
            return FabricMultiplier().registered_product(m, x, w, name)
        a = Signal(signed(self.width), name=f"{name}_a")
        b = Signal(signed(self.width), name=f"{name}_b")
        p = Signal(signed(2 * self.width), name=f"{name}_p")
        m.d.comb += [a.eq(x), b.eq(w)]  # sign-extended to the block's 18 bits
        ports = {f"i_A{n}": a[n] for n in range(self.width)}
        ports |= {f"i_B{n}": b[n] for n in range(self.width)}
        ports |= {f"i_C{n}": Const(0, 1) for n in range(self.width)}
        ports |= {f"o_P{n}": p[n] for n in range(2 * self.width)}
        params = {"p_REG_INPUTA_CLK": "CLK0", "p_REG_INPUTB_CLK": "CLK0", "p_REG_OUTPUT_CLK": "CLK0",
                  "p_REG_INPUTC_CLK": "NONE", "p_REG_PIPELINE_CLK": "NONE",
                  "p_CLK0_DIV": "ENABLED", "p_GSR": "DISABLED", "p_SOURCEB_MODE": "B_SHIFT",
                  "p_MULT_BYPASS": "DISABLED", "p_RESETMODE": "SYNC"}
        m.submodules[f"{name}_dsp"] = Instance(
            "MULT18X18D", **params, **ports,
            i_SIGNEDA=Const(1, 1), i_SIGNEDB=Const(1, 1), i_SOURCEA=Const(0, 1), i_SOURCEB=Const(0, 1),
            i_CLK0=ClockSignal("sync"), i_CLK1=Const(0, 1), i_CLK2=Const(0, 1), i_CLK3=Const(0, 1),
            i_CE0=Const(1, 1), i_CE1=Const(0, 1), i_CE2=Const(0, 1), i_CE3=Const(0, 1),
            i_RST0=Const(0, 1), i_RST1=Const(0, 1), i_RST2=Const(0, 1), i_RST3=Const(0, 1))
        return p[:len(x) + len(w)].as_signed()

    def simulation_sources(self) -> dict[str, str]:
        """A behavioural MULT18X18D for Verilator: the toolchain ships the cell only as a black box."""
        return {"MULT18X18D.v": MULT18X18D_MODEL}


#: Behavioural model of the MULT18X18D features nnhdl uses, for simulating the netlist that goes to the
#: board: optional input registers (A, B) and output register on CLK0 with CE0, synchronous RST0, signed or
#: unsigned operands.  The pipeline register, C input, cascades and the other clocks are not modelled;
#: elaboration fails if a design asks for them, so the model never silently differs from the cell.
MULT18X18D_MODEL = """\
module MULT18X18D #(
  parameter REG_INPUTA_CLK = "NONE", parameter REG_INPUTB_CLK = "NONE", parameter REG_INPUTC_CLK = "NONE",
  parameter REG_PIPELINE_CLK = "NONE", parameter REG_OUTPUT_CLK = "NONE",
  parameter CLK0_DIV = "ENABLED", parameter GSR = "ENABLED", parameter SOURCEB_MODE = "B_SHIFT",
  parameter MULT_BYPASS = "DISABLED", parameter RESETMODE = "SYNC"
) (
""" + "".join(f"  input A{n}, input B{n}, input C{n},\n" for n in range(18)) + """\
  input SIGNEDA, input SIGNEDB, input SOURCEA, input SOURCEB,
  input CLK0, input CLK1, input CLK2, input CLK3, input CE0, input CE1, input CE2, input CE3,
  input RST0, input RST1, input RST2, input RST3,
""" + "".join(f"  output P{n},\n" for n in range(35)) + """\
  output P35
);
  generate
    if ((REG_INPUTA_CLK != "NONE" && REG_INPUTA_CLK != "CLK0") || (REG_INPUTB_CLK != "NONE" && REG_INPUTB_CLK != "CLK0")
        || (REG_OUTPUT_CLK != "NONE" && REG_OUTPUT_CLK != "CLK0") || REG_PIPELINE_CLK != "NONE"
        || MULT_BYPASS != "DISABLED" || RESETMODE != "SYNC")
      unsupported_MULT18X18D_configuration_for_this_model no_such_module();
  endgenerate
  wire [17:0] a_in = {""" + ", ".join(f"A{n}" for n in reversed(range(18))) + """};
  wire [17:0] b_in = {""" + ", ".join(f"B{n}" for n in reversed(range(18))) + """};
  reg [17:0] a_reg = 0, b_reg = 0;
  reg sa_reg = 0, sb_reg = 0;
  always @(posedge CLK0) begin
    if (RST0) begin a_reg <= 0; b_reg <= 0; sa_reg <= 0; sb_reg <= 0; end
    else if (CE0) begin a_reg <= a_in; b_reg <= b_in; sa_reg <= SIGNEDA; sb_reg <= SIGNEDB; end
  end
  wire [17:0] a = (REG_INPUTA_CLK == "NONE") ? a_in : a_reg;
  wire [17:0] b = (REG_INPUTB_CLK == "NONE") ? b_in : b_reg;
  wire sa = (REG_INPUTA_CLK == "NONE") ? SIGNEDA : sa_reg;
  wire sb = (REG_INPUTB_CLK == "NONE") ? SIGNEDB : sb_reg;
  wire signed [35:0] a_ext = {{18{sa & a[17]}}, a};
  wire signed [35:0] b_ext = {{18{sb & b[17]}}, b};
  wire [35:0] product = a_ext * b_ext;
  reg [35:0] p_reg = 0;
  always @(posedge CLK0) begin
    if (RST0) p_reg <= 0;
    else if (CE0) p_reg <= product;
  end
  wire [35:0] p = (REG_OUTPUT_CLK == "NONE") ? product : p_reg;
  assign {""" + ", ".join(f"P{n}" for n in reversed(range(36))) + """} = p;
endmodule
"""


#: the default: runs everywhere
FABRIC = FabricMultiplier()
#: for ECP5 bitstreams (``nnhdl synth``, ``boards.pmod build``)
ECP5_MULT18 = Ecp5Mult18()
