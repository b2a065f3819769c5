"""Dot products: ``lanes`` multipliers (or po2 shifters) accumulating over beats.

A row of ``n_terms`` products arrives as ``ceil(n_terms / lanes)`` beats of
``lanes`` (x, w) pairs; the first beat also carries the bias, the last beat
closes the row and the exact accumulator leaves on ``o``.  ``lanes`` trades
latency against multipliers: 1 is fully sequential, ``n_terms`` fully parallel.

Pipeline (all stages stall together when ``o`` is full and not ready): the
operands are registered (a MULT18X18D's input registers), then the products
(its output register), then the lanes' balanced adder tree with a register
after every :data:`ADD_LEVELS_PER_STAGE` levels, then the accumulator.  No
stage waits on another, so a beat is taken every cycle and only the latency
grows with ``lanes`` (:func:`dot_latency`).
"""

from __future__ import annotations

from amaranth import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fixedpoint import QFormat, accumulator_width
from .arith import po2_layout, po2_product

__all__ = ["DotProduct", "Po2DotProduct", "beat_layout", "dot_latency", "tree_levels", "ADD_LEVELS_PER_STAGE"]

#: adder-tree levels between two registers
ADD_LEVELS_PER_STAGE = 2


def tree_levels(lanes: int) -> int:
    """Levels of a balanced tree of two-input adders over ``lanes`` terms."""
    return (lanes - 1).bit_length()


def tree_stages(lanes: int) -> int:
    """Registers along the adder tree (one after every ``ADD_LEVELS_PER_STAGE`` levels)."""
    return -(-tree_levels(lanes) // ADD_LEVELS_PER_STAGE)


def dot_latency(lanes: int) -> int:
    """Cycles from consuming the last beat of a row to ``o.valid`` (no stalls).

    operand registers, product registers, the adder tree's registers, the accumulator.
    """
    return 2 + tree_stages(lanes) + 1


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
        #: cycles from consuming a row's last beat to ``o.valid``
        self.latency = dot_latency(lanes)
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
        n_stage = 0

        def stage(ctl: dict, values: list, shapes: list, name: str) -> tuple[dict, list]:
            """One pipeline register for the beat's control and ``values``, loaded when ``en``."""
            nonlocal n_stage
            n_stage += 1
            regs = {k: Signal(v.shape(), name=f"{k}_s{n_stage}") for k, v in ctl.items()}
            outs = [Signal(sh, name=f"{name}{j}_s{n_stage}") for j, sh in enumerate(shapes)]
            with m.If(en):
                m.d.sync += [regs[k].eq(v) for k, v in ctl.items()]
                m.d.sync += [o.eq(v) for o, v in zip(outs, values)]
            return regs, outs

        beat = self.i.payload
        ctl = {"valid": self.i.valid, "first": beat.first, "last": beat.last, "bias": beat.bias}
        # operand registers, x then w (packable as the MULT18X18D's input registers)
        wshape = beat_layout(fmt, lanes, self.po2)["w"].shape.elem_shape
        ctl, ops = stage(ctl, [beat.x[j] for j in range(lanes)] + [beat.w[j] for j in range(lanes)],
                         [signed(fmt.width)] * lanes + [wshape] * lanes, "op")
        xs, ws = ops[:lanes], ops[lanes:]
        # products (the MULT18X18D's output register)
        ctl, level = stage(ctl, [self.product(x, w) for x, w in zip(xs, ws)], [signed(2 * fmt.width)] * lanes, "prod")
        # the lanes' adder tree, a register every ADD_LEVELS_PER_STAGE levels
        done = 0
        while len(level) > 1:
            level = [level[n] + level[n + 1] if n + 1 < len(level) else level[n] for n in range(0, len(level), 2)]
            done += 1
            if done % ADD_LEVELS_PER_STAGE == 0 or len(level) == 1:
                ctl, level = stage(ctl, level, [v.shape() for v in level], "sum")
        total = level[0]

        # accumulate (the bias starts each row)
        acc = Signal(signed(self.acc_width))
        base = Signal(signed(self.acc_width))
        m.d.comb += base.eq(acc)
        with m.If(ctl["first"]):
            m.d.comb += base.eq(ctl["bias"] << fmt.frac)
        nxt = Signal(signed(self.acc_width))
        m.d.comb += nxt.eq(base + total)

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(en & ctl["valid"]):
            m.d.sync += acc.eq(nxt)
            with m.If(ctl["last"]):
                m.d.sync += [self.o.payload.eq(nxt), self.o.valid.eq(1)]
        assert n_stage + 1 == self.latency
        return m


class Po2DotProduct(DotProduct):
    """The same integers with power-of-two weights: shifts and adds, no multiplier."""

    po2 = True

    def product(self, x, w):
        return po2_product(x, w, self.fmt)
