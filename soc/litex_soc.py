"""LiteX SoC around the pmod + network core: no CPU, a UART bridge, CSRs.

The Amaranth design (:class:`soc.pmod.PmodTop`) is converted to Verilog and
instantiated; LiteX provides clocks (one PLL for the system clock, one for
MCLK = 256·fs), pins, UARTBone and the CSR bank.  The CSR map is written to
``csr.csv`` by the build so the host tools find every register by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from migen import Cat, ClockDomain, ClockSignal, Instance, Memory, ResetSignal, Signal
from migen.fhdl.specials import Tristate
from litex.build.generic_platform import IOStandard, Misc, Pins, Subsignal
from litex.gen import LiteXModule
from litex.soc.cores.clock import ECP5PLL
from litex.soc.integration.soc_core import SoCMini
from litex.soc.interconnect.csr import AutoCSR, CSRField, CSRStatus, CSRStorage

from nnhdl.hdl.planner import PARTS, Part
from nnhdl.model import Model

from .registers import MODEL_ID, N_WEIGHTS, REGISTERS, SHAPE_ID, WEIGHT_ADDR, WEIGHT_DATA, WEIGHT_READBACK, Flow, \
    Register

__all__ = ["BOARDS", "BoardInfo", "PmodSoC", "ECP5Primitives", "pmod_io"]


@dataclass(frozen=True)
class BoardInfo:
    name: str
    module: str  # litex_boards.platforms.<module>
    clk_name: str
    clk_hz: float
    default_sys_mhz: float
    pins: dict[str, str]  # DESIGN §6
    openfpgaloader: str

    @property
    def part(self) -> Part:
        """The FPGA's resources and default clock: the planner's table, the one place they are written."""
        return PARTS[self.name]


BOARDS: dict[str, BoardInfo] = {
    "ecpix5": BoardInfo(
        "ecpix5", "lambdaconcept_ecpix5", "clk100", 100e6, 100.0,
        {"mclk": "W26", "pdn": "V26", "sda": "U26", "scl": "T26", "sdin1": "T25", "sdout1": "U25",
         "lrck": "U24", "bick": "V24"},
        "ecpix5",
    ),
    "colorlight_i5": BoardInfo(
        "colorlight_i5", "colorlight_i5", "clk25", 25e6, 60.0,
        {"mclk": "K18", "pdn": "T18", "sda": "R17", "scl": "M17", "sdin1": "P17", "sdout1": "R18",
         "lrck": "C18", "bick": "U16"},
        "colorlight-i5",
    ),
}


def pmod_io(board: BoardInfo) -> list:
    p = board.pins
    return [("eurorack_pmod", 0,
             Subsignal("mclk", Pins(p["mclk"])), Subsignal("pdn", Pins(p["pdn"])),
             Subsignal("i2c_sda", Pins(p["sda"]), Misc("PULLMODE=UP")),
             Subsignal("i2c_scl", Pins(p["scl"]), Misc("PULLMODE=UP")),
             Subsignal("sdin1", Pins(p["sdin1"])), Subsignal("sdout1", Pins(p["sdout1"])),
             Subsignal("lrck", Pins(p["lrck"])), Subsignal("bick", Pins(p["bick"])),
             IOStandard("LVCMOS33"))]


def _pll_out_mhz(pll: ECP5PLL) -> float:
    """Output 0's real frequency (compute_config may add a feedback output: undo that)."""
    saved = (dict(pll.clkouts), pll.nclkouts)
    cfg = pll.compute_config()
    pll.clkouts, pll.nclkouts = saved
    return cfg["clko0_freq"] / 1e6


class _CRG(LiteXModule):
    """``sys`` from one PLL; with ``mclk_hz`` an ``audio`` domain from a second one (clocking="cdc")."""

    def __init__(self, platform, board: BoardInfo, sys_clk_hz: float, mclk_hz: float | None) -> None:
        self.cd_sys = ClockDomain()
        clk = platform.request(board.clk_name)
        self.pll_sys = pll = ECP5PLL()
        pll.register_clkin(clk, board.clk_hz)
        # (create_clkout also adds the reset synchroniser on ~locked)
        pll.create_clkout(self.cd_sys, sys_clk_hz, margin=2e-3 if mclk_hz is None else 1e-2)
        self.actual_mhz = {"sys": _pll_out_mhz(pll)}  # what the PLL really makes
        if mclk_hz is not None:
            self.cd_audio = ClockDomain()
            self.pll_audio = apll = ECP5PLL()
            apll.register_clkin(clk, board.clk_hz)
            apll.create_clkout(self.cd_audio, mclk_hz, margin=2e-3)
            self.actual_mhz["audio"] = _pll_out_mhz(apll)
        platform.add_period_constraint(clk, 1e9 / board.clk_hz)


class ECP5Primitives:
    """The FPGA-specific parts of the SoC: PLL clocking and the I2C pins' tristate buffers.

    Injected into :class:`PmodSoC` so that a simulation (``soc.board_sim``) can
    replace exactly these and nothing else.
    """

    def crg(self, platform, board: BoardInfo, sys_clk_hz: float, mclk_hz: float | None) -> LiteXModule:
        return _CRG(platform, board, sys_clk_hz, mclk_hz)

    def open_drain(self, soc: LiteXModule, pads, name: str, oe, i=None) -> None:
        """Pin ``pads.<name>`` pulled low while ``oe``; ``i`` (if given) reads the pin."""
        soc.specials += Tristate(getattr(pads, name), 0, oe, i)


class PmodSoC(SoCMini):
    """The SoC: ``verilog_path`` is the Amaranth core, ``ports`` its port list."""

    def __init__(self, platform, board: BoardInfo, model: Model, verilog_path: Path,
                 ports: list[tuple[str, int, str]], *, sys_clk_hz: float, sample_rate: int,
                 addr_width: int, clocking: str = "cdc", primitives: ECP5Primitives | None = None) -> None:
        mclk = clocking == "mclk"
        prims = primitives or ECP5Primitives()
        self.crg = prims.crg(platform, board, sys_clk_hz, None if mclk else 256 * sample_rate)
        SoCMini.__init__(self, platform, sys_clk_hz, ident="nnhdl eurorack-pmod", ident_version=True)
        self.add_uartbone(name="uartbone", uart_name="serial", baudrate=115200)
        platform.add_source(str(verilog_path))
        pads = platform.request("eurorack_pmod")
        self.nn = nn = _NetworkCSRs(model, addr_width)
        sig = {name: Signal(width, name=name) for name, width, _ in ports}
        conns = dict(i_clk=ClockSignal("sys"), i_rst=ResetSignal("sys"))
        if not mclk:
            conns.update(i_audio_clk=ClockSignal("audio"), i_audio_rst=ResetSignal("audio"))
        for name, width, direction in ports:
            conns[f"{direction}_{name}"] = sig[name]
        self.specials += Instance("nnhdl_pmod", **conns)
        prims.open_drain(self, pads, "i2c_sda", sig["sda_oe"], sig["sda_i"])
        prims.open_drain(self, pads, "i2c_scl", sig["scl_oe"])
        self.comb += [
            pads.mclk.eq(ClockSignal("sys" if mclk else "audio")), pads.bick.eq(sig["bick"]), pads.lrck.eq(sig["lrck"]),
            pads.sdin1.eq(sig["sdin"]), sig["sdout"].eq(pads.sdout1), pads.pdn.eq(sig["pdn"]),
        ]
        nn.connect(self, sig)


class _NetworkCSRs(LiteXModule, AutoCSR):
    """Host-visible registers of the network core: one CSR per row of :data:`soc.registers.REGISTERS`."""

    # The shadow is read through weight_readback only: exposing it on the CSR bus as well
    # would give it a second port and make yosys build it from flip-flops.
    autocsr_exclude = {"shadow"}

    def __init__(self, model: Model, addr_width: int) -> None:
        self.addr_width = addr_width
        resets = {MODEL_ID: model.model_id(), SHAPE_ID: model.shape_id(), N_WEIGHTS: model.params}
        self.csrs = {}
        for reg in REGISTERS:  # in table order: the order of csr.csv
            kind = CSRStorage if reg.flow is Flow.CONTROL else CSRStatus
            if reg.fields:
                csr = kind(fields=[CSRField(f.name, size=f.width, offset=f.offset, pulse=f.pulse,
                                            description=f.description or None) for f in reg.fields],
                           name=reg.name, description=reg.description or None)
            else:
                extra = {"write_from_dev": True} if reg is WEIGHT_ADDR else {}
                csr = kind(reg.width, reset=resets.get(reg, 0), name=reg.name,
                           description=reg.description or None, **extra)
            setattr(self, reg.name, csr)
            self.csrs[reg] = csr
        # write-through shadow of the weight port so the host can verify its upload
        self.shadow = Memory(16, max(2, model.params))
        self.specials += self.shadow

    def connect(self, soc, sig: dict) -> None:
        wr = self.shadow.get_port(write_capable=True)
        self.specials += wr
        addr_reg, data, readback = (self.csrs[r] for r in (WEIGHT_ADDR, WEIGHT_DATA, WEIGHT_READBACK))
        addr = addr_reg.storage[: self.addr_width]
        self.comb += [
            sig["weight_write__addr"].eq(addr), sig["weight_write__data"].eq(data.storage),
            sig["weight_write__en"].eq(data.re),
            wr.adr.eq(addr), wr.dat_w.eq(data.storage), wr.we.eq(data.re),
            readback.status.eq(wr.dat_r),
            addr_reg.dat_w.eq(addr_reg.storage + 1), addr_reg.we.eq(data.re),
        ]
        for reg, csr in self.csrs.items():
            for value, port in _mirrored(reg, csr):
                names = port.verilog_names()
                if reg.index is not None:
                    names = [names[reg.index]]
                pins = Cat(*[sig[n] for n in reversed(names)])  # element 0 most significant
                self.comb += pins.eq(value) if reg.flow is Flow.CONTROL else value.eq(pins)


def _mirrored(reg: Register, csr) -> list:
    """``(CSR value, port)`` pairs of a register: the whole register, or each field."""
    if reg.fields:
        return [(getattr(csr.fields, f.name), f.port) for f in reg.fields]
    if reg.port is None:
        return []
    return [(csr.storage if reg.flow is Flow.CONTROL else csr.status, reg.port)]
