"""Everything between the eurorack-pmod's pins and the host's registers, in Amaranth.

Two ways to clock it (``PmodOptions.clocking``):

* ``"cdc"``: two clock domains, ``audio`` (MCLK = 256·fs: TDM serdes,
  calibration) and ``sync`` (a faster system clock: network core, I2C,
  status).  Samples cross in both directions through small asynchronous
  FIFOs, so the network gets ``f_sys / fs`` cycles per sample.
* ``"mclk"``: everything on MCLK (``sync`` *is* MCLK): no crossing, exactly
  256 cycles per sample — chosen when the network's schedule fits.

Either way the answer to input frame f goes out in frame f + 2 + D
(``PmodOptions.delay_frames``, :mod:`soc.core`'s contract): the crossings
carry at most one sample per frame each way, whatever D is.

Converted to Verilog by :func:`to_verilog` and instantiated by the LiteX SoC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth import Cat, DomainRenamer, Module, Mux, Signal
from amaranth.back import verilog
from amaranth.lib import fifo, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from nnhdl.model import Model

from .calibration import CalConstants, Calibrator
from .core import BoardCore, ChannelMap, register_members
from .pmod_init import LED_COUNT, SERIAL_BYTES, I2CSequencer, pmod_program
from .registers import Flow, ports
from .tdm import SLOTS, TDMSerdes

__all__ = ["PmodOptions", "PmodTop", "to_verilog", "port_list", "led_levels", "I2C_HZ"]

I2C_HZ = 100_000
SAMPLE_BITS = 16 * SLOTS


@dataclass(frozen=True)
class PmodOptions:
    sample_rate: int = 192000
    sys_clk_hz: float = 100e6
    lanes: object = None
    i2c_divider: int | None = None  # None: from sys_clk_hz for ~100 kHz SCL
    delay_shift: int = 14  # codec reset delays: 255 << 14 cycles (~40 ms at 100 MHz)
    reset_delay: int = 255
    clocking: str = "cdc"  # "cdc" (audio + sync domains) or "mclk" (one domain, sync = MCLK)
    delay_frames: int = 0  # D: the answer to frame f goes out in frame f + 2 + D (soc.core.extra_frames)

    def __post_init__(self) -> None:
        if self.clocking not in ("cdc", "mclk"):
            raise ValueError(f"clocking must be 'cdc' or 'mclk', not {self.clocking!r}")


def led_levels(value):
    """(positive, negative) LED brightness of a sample: |count| >> 7, at most 255."""
    pos = Mux(value > 0, value >> 7, 0)
    neg = Mux(value < 0, (-value) >> 7, 0)
    return Mux(pos > 255, 255, pos)[:8], Mux(neg > 255, 255, neg)[:8]


class PmodTop(wiring.Component):
    """Pins, control inputs and status outputs of the whole pmod + network core."""

    def __init__(self, model: Model, network: wiring.Component, *, options: PmodOptions = PmodOptions(),
                 cal: CalConstants | None = None, channels: ChannelMap | None = None) -> None:
        self.model = model
        self.options = options
        self.cal = cal or CalConstants.default()
        self.core = BoardCore(model, network, channels, delay_frames=options.delay_frames)
        ww = self.core.signature.members["weight_write"]
        super().__init__({
            # pins
            "bick": Out(1), "lrck": Out(1), "sdin": Out(1), "sdout": In(1), "pdn": Out(1),
            "scl_oe": Out(1), "sda_oe": Out(1), "sda_i": In(1, init=1),
            # the weight port, and the control and status the registers mirror (sync domain)
            "weight_write": ww,
            **register_members(core_only=False),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        o = self.options
        mclk = o.clocking == "mclk"
        audio = (lambda x: x) if mclk else DomainRenamer("audio")
        m.submodules.tdm = tdm = audio(TDMSerdes())
        m.submodules.cal_in = cal_in = audio(Calibrator(self.cal.adc, invert=True))
        m.submodules.cal_out = cal_out = audio(Calibrator(self.cal.dac, invert=False))
        m.submodules.core = core = self.core
        divider = o.i2c_divider or max(1, math.ceil(o.sys_clk_hz / (4 * I2C_HZ)))
        m.submodules.i2c = seq = I2CSequencer(pmod_program(o.sample_rate, reset_delay=o.reset_delay),
                                              divider=divider, delay_shift=o.delay_shift)

        # pins
        m.d.comb += [self.bick.eq(tdm.bick), self.lrck.eq(tdm.lrck), self.sdin.eq(tdm.sdin),
                     tdm.sdout.eq(self.sdout), self.pdn.eq(seq.pdn), self.scl_oe.eq(seq.scl_oe),
                     self.sda_oe.eq(seq.sda_oe), seq.sda_i.eq(self.sda_i)]

        wiring.connect(m, tdm.adc, cal_in.i)
        wiring.connect(m, cal_out.o, tdm.dac)
        plugged_now = Mux(seq.ready, seq.jack[:SLOTS], (1 << SLOTS) - 1)  # PCA9557 inputs 0..3 = pmod ins 0..3
        clipped_sync = Signal()
        if mclk:
            m.d.comb += [core.adc.payload.eq(cal_in.o.payload), core.adc.valid.eq(cal_in.o.valid),
                         cal_out.i.payload.eq(core.dac.payload), cal_out.i.valid.eq(core.dac.valid),
                         cal_in.plugged.eq(plugged_now), clipped_sync.eq(cal_in.clipped | cal_out.clipped)]
        else:
            m.submodules.up = up = fifo.AsyncFIFO(width=SAMPLE_BITS, depth=4, r_domain="sync", w_domain="audio")
            m.submodules.down = down = fifo.AsyncFIFO(width=SAMPLE_BITS, depth=4, r_domain="audio",
                                                      w_domain="sync")
            # audio -> sync: ADC frame, inverted + calibrated, into the core
            m.d.comb += [up.w_data.eq(cal_in.o.payload.as_value()), up.w_en.eq(cal_in.o.valid)]
            m.d.comb += [core.adc.payload.eq(up.r_data), core.adc.valid.eq(up.r_rdy), up.r_en.eq(1)]
            # sync -> audio: core output, calibrated, held by the serdes
            m.d.comb += [down.w_data.eq(core.dac.payload.as_value()), down.w_en.eq(core.dac.valid)]
            m.d.comb += [cal_out.i.payload.eq(down.r_data), cal_out.i.valid.eq(down.r_rdy), down.r_en.eq(1)]
            # jack detect -> plugged mask in the audio domain; clip flags back to sync
            plugged = Signal(SLOTS, init=(1 << SLOTS) - 1)
            m.submodules.plugged_sync = FFSynchronizer(plugged_now, plugged, o_domain="audio",
                                                       init=(1 << SLOTS) - 1)
            m.d.comb += cal_in.plugged.eq(plugged)
            m.submodules.clip_sync = FFSynchronizer(cal_in.clipped | cal_out.clipped, clipped_sync)
        clip_prev = Signal()
        m.d.sync += clip_prev.eq(clipped_sync)
        with m.If(clipped_sync & ~clip_prev):
            m.d.sync += self.clipped.eq(self.clipped + 1)

        # LEDs: 8 channels (4 in, 4 out) x (positive, negative) levels of the latest samples
        leds = Signal(8 * LED_COUNT)
        last_in = Signal.like(core.adc.payload)
        last_out = Signal.like(core.dac.payload)
        with m.If(core.adc.valid):
            m.d.sync += last_in.eq(core.adc.payload)
        with m.If(core.dac.valid):
            m.d.sync += last_out.eq(core.dac.payload)
        levels = []
        for s in list(last_in) + list(last_out):
            levels.extend(led_levels(s))
        m.d.sync += leds.eq(Cat(*levels))
        for i in range(LED_COUNT):
            m.d.comb += seq.leds[i].eq(leds[8 * i: 8 * i + 8])

        # control / status: the core's registers forwarded, the rest from the I2C sequencer
        wiring.connect(m, wiring.flipped(self.weight_write), core.weight_write)
        for p, flow in ports(core_only=True):
            outer, inner = getattr(self, p.name), getattr(core, p.name)
            src, dst = (outer, inner) if flow is Flow.CONTROL else (inner, outer)
            pairs = zip(src, dst) if p.count is not None else [(src, dst)]
            m.d.comb += [d.eq(s) for s, d in pairs]
        m.d.comb += [seq.restart.eq(self.codec_restart), self.jack.eq(seq.jack), self.i2c_ready.eq(seq.ready),
                     self.i2c_nacks.eq(seq.nacks)]
        for i in range(SERIAL_BYTES):
            m.d.comb += self.serial[i].eq(seq.serial[i])
        return m


def port_list(top: PmodTop) -> list[tuple[str, int, str]]:
    """``(name, width, "i"|"o")`` of every port, named as in the Verilog (clocks not included)."""
    return [("__".join(str(p) for p in path), len(value), "i" if member.flow == In else "o")
            for path, member, value in top.signature.flatten(top)]


def to_verilog(top: PmodTop, name: str = "nnhdl_pmod") -> tuple[str, list[tuple[str, int, str]]]:
    """Verilog text and :func:`port_list` (clocks: clk/rst, audio_clk/audio_rst)."""
    return verilog.convert(top, name=name, emit_src=False), port_list(top)
