"""AK4619 TDM128 serialiser/deserialiser (DESIGN §6), FPGA as clock master.

Runs in the MCLK domain (MCLK = 256·fs), so one frame is exactly 256 cycles
at every sample rate: 48 kHz and 192 kHz differ only in the MCLK frequency
and one codec register, not here.  An 8-bit counter makes BICK = MCLK/2 and
LRCK = MCLK/256; the format is I2S-compatible TDM128 (reg 0x01 = 0xAE):
4 slots of 32 BICK, LRCK low for slots 0–1, each slot's MSB one BICK after the
slot boundary, only the top 16 bits of a slot carry data.

Latency contract (what the board core and the tests rely on):
  * ``adc`` presents frame f's four samples (valid for one cycle) right
    after frame f ends;
  * the last ``dac`` word given before frame f+1 ends is transmitted in
    frame f+2.
So a core that answers ``adc`` sample t before sample t+1 arrives gets a full
frame (256 MCLK cycles), and its result for input frame f goes out in frame
f+2 (one frame to receive, one to compute).  A core whose answer comes D
frames later than that (given by frame f+1+D) has it sent in frame f+2+D:
the board core's contract (:mod:`soc.core`) builds on this one.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["TDMSerdes", "SLOTS", "SAMPLE_WIDTH", "FRAME_CYCLES", "Samples"]

SLOTS = 4
SAMPLE_WIDTH = 16
SLOT_BITS = 32
FRAME_BITS = SLOTS * SLOT_BITS  # BICK periods per frame (TDM128)
FRAME_CYCLES = 2 * FRAME_BITS  # MCLK cycles per frame (= 256)


def Samples(n: int = SLOTS, width: int = SAMPLE_WIDTH) -> data.ArrayLayout:
    """Layout of one sample per channel (pmod counts, signed 16 bit)."""
    return data.ArrayLayout(signed(width), n)


class TDMSerdes(wiring.Component):
    """Codec pins on one side, one 4-channel sample stream each way on the other.

    ``adc`` has no back-pressure (audio does not wait); ``dac`` is always
    ready and simply holds the last word it was given.
    """

    def __init__(self) -> None:
        super().__init__({
            "bick": Out(1),
            "lrck": Out(1),
            "sdin": Out(1),  # to the codec's DAC
            "sdout": In(1),  # from the codec's ADC
            "adc": Out(stream.Signature(Samples(), always_ready=True)),
            "dac": In(stream.Signature(Samples(), always_ready=True)),
            "frame": Out(1),  # one-cycle pulse in the last cycle of every frame
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        cnt = Signal(8)
        m.d.sync += cnt.eq(cnt + 1)
        last = cnt == FRAME_CYCLES - 1
        m.d.comb += [self.bick.eq(cnt[0]), self.lrck.eq(cnt[7]), self.frame.eq(last)]

        # DAC side: hold the latest word; at the frame boundary load it into a
        # 128-bit shift register laid out as the frame's bits, MSB first.
        hold = Signal(Samples())
        with m.If(self.dac.valid):
            m.d.sync += hold.eq(self.dac.payload)
        pad = Const(0, SLOT_BITS - SAMPLE_WIDTH)
        # Cat is LSB first: slot 3 (sent last) goes lowest.
        frame_bits = Cat(*[Cat(pad, hold[s]) for s in reversed(range(SLOTS))])
        txsr = Signal(FRAME_BITS)
        sdin = Signal()
        m.d.comb += self.sdin.eq(sdin)
        with m.If(cnt[0]):  # BICK falls at the next edge: present the next bit
            with m.If(last):
                # bit 0 of a frame is the (unused) LSB of the previous slot 3
                m.d.sync += [txsr.eq(frame_bits), sdin.eq(0)]
            with m.Else():
                m.d.sync += [sdin.eq(txsr[-1]), txsr.eq(txsr << 1)]

        # ADC side: sample SDOUT as BICK rises; bit b of the frame ends up at
        # rxsr[127 - b] once the frame is complete.
        rxsr = Signal(FRAME_BITS)
        with m.If(~cnt[0]):
            m.d.sync += rxsr.eq(Cat(self.sdout, rxsr[:-1]))
        m.d.sync += self.adc.valid.eq(last)
        with m.If(last):
            for s in range(SLOTS):
                lo = FRAME_BITS - 1 - SAMPLE_WIDTH - SLOT_BITS * s  # bit b = 16 + 32 s
                m.d.sync += self.adc.payload[s].eq(rxsr[lo:lo + SAMPLE_WIDTH])
        return m
