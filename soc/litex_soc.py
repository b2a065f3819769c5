"""LiteX SoC around the pmod + network core: no CPU, a UART bridge, CSRs.

The Amaranth design (:class:`soc.pmod.PmodTop`) is converted to Verilog and
instantiated; LiteX provides clocks (one PLL for the system clock, one for
MCLK = 256·fs), pins, UARTBone and the CSR bank.  The CSR map is written to
``csr.csv`` by the build so the host tools find every register by name.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from migen import Cat, ClockDomain, ClockSignal, Instance, Memory, ResetSignal, Signal
from migen.fhdl.specials import Tristate
from litex.build.generic_platform import IOStandard, Misc, Pins, Subsignal
from litex.gen import LiteXModule
from litex.soc.cores.clock import ECP5PLL
from litex.soc.integration.soc_core import SoCMini
from litex.soc.interconnect.csr import AutoCSR, CSRField, CSRStatus, CSRStorage

from nnhdl.model import Model

__all__ = ["BOARDS", "BoardInfo", "PmodSoC", "ECP5Primitives", "shape_id", "model_id", "pmod_io", "hardware_manifest"]


@dataclass(frozen=True)
class BoardInfo:
    name: str
    module: str  # litex_boards.platforms.<module>
    clk_name: str
    clk_hz: float
    default_sys_mhz: float
    pins: dict[str, str]  # DESIGN §6
    openfpgaloader: str
    device_figures: dict[str, int]


BOARDS: dict[str, BoardInfo] = {
    "ecpix5": BoardInfo(
        "ecpix5", "lambdaconcept_ecpix5", "clk100", 100e6, 100.0,
        {"mclk": "W26", "pdn": "V26", "sda": "U26", "scl": "T26", "sdin1": "T25", "sdout1": "U25",
         "lrck": "U24", "bick": "V24"},
        "ecpix5", {"MULT18X18D": 156, "DP16KD": 208, "TRELLIS_COMB": 83640},
    ),
    "colorlight_i5": BoardInfo(
        "colorlight_i5", "colorlight_i5", "clk25", 25e6, 60.0,
        {"mclk": "K18", "pdn": "T18", "sda": "R17", "scl": "M17", "sdin1": "P17", "sdout1": "R18",
         "lrck": "C18", "bick": "U16"},
        "colorlight-i5", {"MULT18X18D": 28, "DP16KD": 56, "TRELLIS_COMB": 24288},
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


def hardware_manifest(model: Model) -> dict:
    """The manifest without ``meta`` and ``sample_rate``: what the built network fixes."""
    m = model.manifest()
    m.pop("meta")
    m.pop("sample_rate")
    return m


def shape_id(model: Model) -> int:
    """64-bit id of everything but the weights: what a weight reload must match."""
    text = json.dumps(hardware_manifest(model), sort_keys=True).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")


def model_id(model: Model) -> int:
    """First 64 bits of :meth:`Model.fingerprint` (weights included)."""
    return int(model.fingerprint()[:16], 16)


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
    """Host-visible registers of the network core (see the README's register table)."""

    # The shadow is read through weight_readback only: exposing it on the CSR bus as well
    # would give it a second port and make yosys build it from flip-flops.
    autocsr_exclude = {"shadow"}

    def __init__(self, model: Model, addr_width: int) -> None:
        self.addr_width = addr_width
        self.model_id = CSRStorage(64, reset=model_id(model), description="Model fingerprint (first 64 bits); "
                                   "the host rewrites it after a weight reload.")
        self.shape_id = CSRStatus(64, reset=shape_id(model), description="Hash of the layer shapes built in.")
        self.n_weights = CSRStatus(32, reset=model.params, description="Number of weight addresses.")
        self.control = CSRStorage(fields=[
            CSRField("bypass", size=1, description="Copy inputs to outputs."),
            CSRField("emb_override", size=1, description="Replace the embedding inputs by emb0/emb1."),
        ])
        self.pulse = CSRStorage(fields=[
            CSRField("bank_swap", size=1, pulse=True, description="Activate the written bank at the next sample."),
            CSRField("clear", size=1, pulse=True, description="Clear the status counters."),
            CSRField("codec_restart", size=1, pulse=True, description="Power-cycle and re-initialise the codec."),
        ])
        self.emb0 = CSRStorage(16, description="Embedding override e0 (counts).")
        self.emb1 = CSRStorage(16, description="Embedding override e1 (counts).")
        self.weight_addr = CSRStorage(32, write_from_dev=True, description="Next weight address; "
                                      "auto-increments after each weight_data write.")
        self.weight_data = CSRStorage(16, description="Writing stores a mantissa at weight_addr (inactive bank).")
        self.weight_readback = CSRStatus(16, description="Shadow copy of the word last written at weight_addr.")
        self.active_bank = CSRStatus(1)
        self.samples = CSRStatus(32)
        self.overruns = CSRStatus(32)
        self.saturations = CSRStatus(32)
        self.clipped = CSRStatus(32)
        self.cycles = CSRStatus(16)
        self.cycles_max = CSRStatus(16)
        self.jack = CSRStatus(8)
        self.i2c = CSRStatus(fields=[CSRField("ready", size=1), CSRField("nacks", size=16, offset=8)])
        self.serial = CSRStatus(48, description="EEPROM bytes 0xFA..0xFF (maker, device, 32-bit serial).")
        # write-through shadow of the weight port so the host can verify its upload
        self.shadow = Memory(16, max(2, model.params))
        self.specials += self.shadow

    def connect(self, soc, sig: dict) -> None:
        wr = self.shadow.get_port(write_capable=True)
        self.specials += wr
        addr = self.weight_addr.storage[: self.addr_width]
        self.comb += [
            sig["bypass"].eq(self.control.fields.bypass),
            sig["emb_override"].eq(self.control.fields.emb_override),
            sig["emb_value__0"].eq(self.emb0.storage), sig["emb_value__1"].eq(self.emb1.storage),
            sig["bank_swap"].eq(self.pulse.fields.bank_swap), sig["clear"].eq(self.pulse.fields.clear),
            sig["codec_restart"].eq(self.pulse.fields.codec_restart),
            sig["weight_write__addr"].eq(addr), sig["weight_write__data"].eq(self.weight_data.storage),
            sig["weight_write__en"].eq(self.weight_data.re),
            wr.adr.eq(addr), wr.dat_w.eq(self.weight_data.storage), wr.we.eq(self.weight_data.re),
            self.weight_readback.status.eq(wr.dat_r),
            self.weight_addr.dat_w.eq(self.weight_addr.storage + 1), self.weight_addr.we.eq(self.weight_data.re),
            self.active_bank.status.eq(sig["active_bank"]),
            self.samples.status.eq(sig["samples"]), self.overruns.status.eq(sig["overruns"]),
            self.saturations.status.eq(sig["saturations"]), self.clipped.status.eq(sig["clipped"]),
            self.cycles.status.eq(sig["cycles"]), self.cycles_max.status.eq(sig["cycles_max"]),
            self.jack.status.eq(sig["jack"]),
            self.i2c.fields.ready.eq(sig["i2c_ready"]), self.i2c.fields.nacks.eq(sig["i2c_nacks"]),
            self.serial.status.eq(Cat(*[sig[f"serial__{i}"] for i in reversed(range(6))])),
        ]

