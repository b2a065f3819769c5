"""Dot products: ``lanes`` multipliers (or po2 shifters) accumulating over beats.

A row of ``n_terms`` products arrives as ``ceil(n_terms / lanes)`` beats of
``lanes`` (x, w) pairs; the first beat also carries the bias, the last beat
closes the row and the exact accumulator leaves on ``o``.  ``lanes`` trades
latency against multipliers: 1 is fully sequential, ``n_terms`` fully parallel.

Pipeline: each lane's operands are registered, then its product (an injected
:class:`~nnhdl.hdl.mult.Multiplier`: flip-flops around ``*`` by default, a
MULT18X18D's own input and output registers for ECP5 bitstreams, or the po2
shifter), then the lanes' balanced adder tree with a
register after every :data:`ADD_LEVELS_PER_STAGE` levels, then the
accumulator, which writes each finished row into an output queue.  The stages
never stall (no clock enable on thousands of pipeline flip-flops, the net that
bounded Fmax on large layers); instead ``i.ready`` is a register that admits a
beat only while the queue has room for every row in flight (credit-based flow
control), and :attr:`DotProduct.ready_next` gives that register's next value
so a caller can drive its own wide enables from flip-flops too.  A beat is
taken every cycle while ``o`` is taken, and only the latency grows with
``lanes`` (:func:`dot_latency`).
"""

from __future__ import annotations

from amaranth import Module, Signal, signed
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..fixedpoint import QFormat, accumulator_width
from .arith import po2_layout, po2_product
from .mult import FABRIC, MULTIPLIER_LATENCY, Multiplier

__all__ = ["DotProduct", "Po2DotProduct", "beat_layout", "dot_latency", "queue_depth", "tree_levels",
           "ADD_LEVELS_PER_STAGE"]

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
    return MULTIPLIER_LATENCY + tree_stages(lanes) + 1


def queue_depth(lanes: int) -> int:
    """Rows the output queue holds: one per pipeline stage plus one, so that with ``o`` taken the cycle it is
    offered a row may finish every cycle without ``i.ready`` ever falling (the credit never runs out)."""
    return dot_latency(lanes) + 1


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
    """Exact ``sum x*w + (bias << frac)`` over the beats of a row (``multiplier`` per lane)."""

    po2 = False

    def __init__(self, fmt: QFormat, n_terms: int, lanes: int, multiplier: Multiplier = FABRIC) -> None:
        if not 1 <= lanes:
            raise ValueError("lanes must be >= 1")
        self.fmt = fmt
        self.multiplier = multiplier
        self.lanes = lanes
        self.n_terms = n_terms
        self.acc_width = accumulator_width(fmt, n_terms)
        #: cycles from consuming a row's last beat to ``o.valid``
        self.latency = dot_latency(lanes)
        #: the value ``i.ready`` takes in the next cycle (``i.ready`` is a register)
        self.ready_next = Signal()
        super().__init__({
            "i": In(stream.Signature(beat_layout(fmt, lanes, self.po2))),
            "o": Out(stream.Signature(signed(self.acc_width))),
        })

    def elaborate(self, platform):
        m = Module()
        fmt, lanes = self.fmt, self.lanes
        depth = queue_depth(lanes)
        m.submodules.queue = queue = SyncFIFO(width=self.acc_width, depth=depth)
        n_stage = 0

        def stage(ctl: dict, values: list, shapes: list, name: str) -> tuple[dict, list]:
            """One free-running pipeline register for the beat's control and ``values``."""
            nonlocal n_stage
            n_stage += 1
            regs = {k: Signal(v.shape(), name=f"{k}_s{n_stage}") for k, v in ctl.items()}
            outs = [Signal(sh, name=f"{name}{j}_s{n_stage}") for j, sh in enumerate(shapes)]
            m.d.sync += [regs[k].eq(v) for k, v in ctl.items()]
            m.d.sync += [o.eq(v) for o, v in zip(outs, values)]
            return regs, outs

        # credit: rows whose last beat was taken and which have not left on ``o`` yet (in the pipe or queued)
        pending = Signal(range(depth + 1))
        taken = Signal()
        m.d.comb += taken.eq(self.i.valid & self.i.ready)
        ended = Signal()
        m.d.comb += ended.eq(taken & self.i.payload.last)
        left = Signal()
        m.d.comb += left.eq(self.o.valid & self.o.ready)
        pending_next = Signal(range(depth + 2))
        m.d.comb += pending_next.eq(pending + ended - left)
        full = Signal()  # ~i.ready, a register (so it resets to ready)
        m.d.comb += [self.ready_next.eq(pending_next < depth), self.i.ready.eq(~full)]
        m.d.sync += [pending.eq(pending_next), full.eq(~self.ready_next)]

        beat = self.i.payload
        ctl = {"valid": taken, "first": beat.first, "last": beat.last, "bias": beat.bias}
        # each lane's operand and product registers (inside the injected multiplier)
        level = [self.multiplier.registered_product(m, beat.x[j], beat.w[j], f"lane{j}") for j in range(lanes)]
        for _ in range(MULTIPLIER_LATENCY):
            ctl, _ = stage(ctl, [], [], "ctl")
        # the lanes' adder tree, a register every ADD_LEVELS_PER_STAGE levels
        done = 0
        while len(level) > 1:
            level = [level[n] + level[n + 1] if n + 1 < len(level) else level[n] for n in range(0, len(level), 2)]
            done += 1
            if done % ADD_LEVELS_PER_STAGE == 0 or len(level) == 1:
                ctl, level = stage(ctl, level, [v.shape() for v in level], "sum")
        total = level[0]

        # accumulate (the bias starts each row); a finished row goes into the queue
        acc = Signal(signed(self.acc_width))
        base = Signal(signed(self.acc_width))
        m.d.comb += base.eq(acc)
        with m.If(ctl["first"]):
            m.d.comb += base.eq(ctl["bias"] << fmt.frac)
        nxt = Signal(signed(self.acc_width))
        m.d.comb += nxt.eq(base + total)
        with m.If(ctl["valid"]):
            m.d.sync += acc.eq(nxt)
        m.d.comb += [queue.w_data.eq(nxt), queue.w_en.eq(ctl["valid"] & ctl["last"]),
                     self.o.payload.eq(queue.r_data), self.o.valid.eq(queue.r_rdy), queue.r_en.eq(self.o.ready)]
        assert n_stage + 1 == self.latency
        return m


class Po2Shifter:
    """The po2 lane: a weight code (sign, shift, zero) applied to x by a shifter, registered like a multiplier."""

    name = "po2"

    def __init__(self, fmt: QFormat) -> None:
        self.fmt = fmt

    def registered_product(self, m: Module, x, w, name: str):
        xr = Signal(x.shape(), name=f"{name}_x")
        wr = Signal(po2_layout(self.fmt), name=f"{name}_w")
        p = Signal(signed(2 * self.fmt.width), name=f"{name}_p")
        m.d.sync += [xr.eq(x), wr.eq(w), p.eq(po2_product(xr, wr, self.fmt))]
        return p


class Po2DotProduct(DotProduct):
    """The same integers with power-of-two weights: shifts and adds, no multiplier."""

    po2 = True

    def __init__(self, fmt: QFormat, n_terms: int, lanes: int, multiplier: Multiplier | None = None) -> None:
        super().__init__(fmt, n_terms, lanes, Po2Shifter(fmt))
