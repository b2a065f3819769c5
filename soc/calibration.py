"""Per-channel calibration of the eurorack-pmod (DESIGN §6).

``out = clamp(((x - offset) * mult) >> 10)`` per channel, to signed 16 bits,
where for the ADC ``x`` is the *negated* codec sample (the board's input
stage inverts) and unplugged inputs read 0.  A calibrated sample is
4 counts/mV.  Constants are baked into the bitstream at build time: the
shipped defaults, or a user's file (``--cal FILE``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from nnhdl.errors import NnhdlError

from .tdm import SLOTS, Samples

__all__ = ["CalConstants", "Calibrator", "MULT_SHIFT", "DEFAULT_CAL"]

MULT_SHIFT = 10
DEFAULT_CAL = "cal_default.json"


@dataclass(frozen=True)
class CalConstants:
    """``adc`` and ``dac``: four ``(offset, mult)`` pairs each (signed 16-bit ints)."""

    adc: tuple[tuple[int, int], ...]
    dac: tuple[tuple[int, int], ...]

    @classmethod
    def default(cls) -> "CalConstants":
        return cls.load(resources.files("soc").joinpath(DEFAULT_CAL))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CalConstants":
        """Read ``{"adc": [[offset, mult] x4], "dac": [[offset, mult] x4]}``."""
        from nnhdl.inputs import expect_keys, read_json

        if not Path(path).exists():
            raise NnhdlError(f"{path}: cannot read calibration file (no such file)")
        obj = read_json(path, "calibration file")
        if isinstance(obj, dict):
            expect_keys({k: v for k, v in obj.items() if not k.startswith("_")}, ("adc", "dac"), str(path))
        out = {}
        for side in ("adc", "dac"):
            rows = obj.get(side) if isinstance(obj, dict) else None
            if not isinstance(rows, list) or len(rows) != SLOTS:
                raise NnhdlError(f"{path}: '{side}' must be a list of {SLOTS} [offset, mult] pairs")
            pairs = []
            for ch, row in enumerate(rows):
                if (not isinstance(row, list) or len(row) != 2
                        or not all(isinstance(v, int) and not isinstance(v, bool) and -32768 <= v <= 32767 for v in row)):
                    raise NnhdlError(f"{path}: {side}[{ch}] must be [offset, mult], signed 16-bit integers; got {row!r}")
                pairs.append((row[0], row[1]))
            out[side] = tuple(pairs)
        return cls(**out)


class Calibrator(wiring.Component):
    """Four channels in, four calibrated channels out, one cycle later.

    ``invert`` negates the input first (the ADC side); ``plugged`` (ADC side)
    forces a channel to 0 when its jack is empty.  ``clipped`` pulses when any
    channel hit the 16-bit limits.
    """

    def __init__(self, pairs: tuple[tuple[int, int], ...], *, invert: bool) -> None:
        self.pairs = pairs
        self.invert = invert
        super().__init__({
            "i": In(stream.Signature(Samples(), always_ready=True)),
            "o": Out(stream.Signature(Samples(), always_ready=True)),
            "plugged": In(SLOTS, init=(1 << SLOTS) - 1),
            "clipped": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.sync += self.o.valid.eq(self.i.valid)
        clip = []
        for ch, (offset, mult) in enumerate(self.pairs):
            x = Signal(signed(18))
            m.d.comb += x.eq(-self.i.payload[ch] if self.invert else self.i.payload[ch])
            prod = Signal(signed(36))
            m.d.comb += prod.eq((x - offset) * mult)
            y = Signal(signed(26))
            m.d.comb += y.eq(prod >> MULT_SHIFT)
            hi, lo = y > 32767, y < -32768
            clip.append(hi | lo)
            val = Mux(hi, 32767, Mux(lo, -32768, y))
            with m.If(self.i.valid):
                m.d.sync += self.o.payload[ch].eq(Mux(self.plugged[ch], val, 0))
        m.d.sync += self.clipped.eq(self.i.valid & Cat(*clip).any())
        return m
