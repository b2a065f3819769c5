"""Dot products: ``lanes`` multipliers (or po2 shifters) accumulating over beats.

A row of ``n_terms`` products arrives as ``ceil(n_terms / lanes)`` beats of
``lanes`` (x, w) pairs; the first beat also carries the bias, the last beat
closes the row and the exact accumulator leaves on ``o``.  ``lanes`` trades
latency against multipliers: 1 is fully sequential, ``n_terms`` fully parallel.

Pipeline (all stages stall together when ``o`` is full and not ready):
products are registered (a MULT18X18D's pipeline register), their sum is
registered, then added to the accumulator.  A beat consumed in cycle c
finishes its row on ``o`` in c+3.
"""

from __future__ import annotations

from amaranth import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fixedpoint import QFormat, accumulator_width
from .arith import po2_layout, po2_product

__all__ = ["DotProduct", "Po2DotProduct", "beat_layout", "DOT_LATENCY"]

#: cycles from consuming the last beat of a row to ``o.valid`` (no stalls)
DOT_LATENCY = 3


def beat_layout(fmt: QFormat, lanes: int, po2: bool) -> data.StructLayout:
    weight = po2_layout(fmt) if po2 else signed(fmt.width)
    return data.StructLayout({
        "x": data.ArrayLayout(signed(fmt.width), lanes),
        "w": data.ArrayLayout(weight, lanes),
        "bias": signed(fmt.width),
        "first": 1,
        "last": 1,
    })


class DotProduct(wiring.Component):
    """Exact ``sum x*w + (bias << frac)`` over the beats of a row (multipliers)."""

    po2 = False

    def __init__(self, fmt: QFormat, n_terms: int, lanes: int) -> None:
        if not 1 <= lanes:
            raise ValueError("lanes must be >= 1")
        self.fmt = fmt
        self.lanes = lanes
        self.n_terms = n_terms
        self.acc_width = accumulator_width(fmt, n_terms)
        super().__init__({
            "i": In(stream.Signature(beat_layout(fmt, lanes, self.po2))),
            "o": Out(stream.Signature(signed(self.acc_width))),
        })

    def product(self, x, w):
        return x * w

    def elaborate(self, platform):
        m = Module()
        fmt, lanes = self.fmt, self.lanes
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]

        p_valid, p_first, p_last = Signal(), Signal(), Signal()
        p_bias = Signal(signed(fmt.width))
        prods = [Signal(signed(2 * fmt.width), name=f"prod{j}") for j in range(lanes)]
        beat = self.i.payload
        with m.If(en):
            m.d.sync += [p_valid.eq(self.i.valid), p_first.eq(beat.first), p_last.eq(beat.last),
                         p_bias.eq(beat.bias)]
            m.d.sync += [prods[j].eq(self.product(beat.x[j], beat.w[j])) for j in range(lanes)]

        # stage 2: the lanes' sum (a balanced adder tree), registered
        level = list(prods)
        while len(level) > 1:
            level = [level[n] + level[n + 1] if n + 1 < len(level) else level[n] for n in range(0, len(level), 2)]
        s_valid, s_first, s_last = Signal(), Signal(), Signal()
        s_bias = Signal(signed(fmt.width))
        total = Signal(signed(self.acc_width))
        with m.If(en):
            m.d.sync += [s_valid.eq(p_valid), s_first.eq(p_first), s_last.eq(p_last), s_bias.eq(p_bias),
                         total.eq(level[0])]

        # stage 3: accumulate (the bias starts each row)
        acc = Signal(signed(self.acc_width))
        base = Signal(signed(self.acc_width))
        m.d.comb += base.eq(acc)
        with m.If(s_first):
            m.d.comb += base.eq(s_bias << fmt.frac)
        nxt = Signal(signed(self.acc_width))
        m.d.comb += nxt.eq(base + total)

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(en & s_valid):
            m.d.sync += acc.eq(nxt)
            with m.If(s_last):
                m.d.sync += [self.o.payload.eq(nxt), self.o.valid.eq(1)]
        return m


class Po2DotProduct(DotProduct):
    """The same integers with power-of-two weights: shifts and adds, no multiplier."""

    po2 = True

    def product(self, x, w):
        return po2_product(x, w, self.fmt)
