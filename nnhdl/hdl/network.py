"""The whole model as one component: input vectors in, output vectors out, one per sample.

Layers are pipeline stages chained with ``lib.stream``: layer l works on
sample t while layer l+1 works on sample t-1.  The Network admits a sample at
most every :attr:`Network.initiation_interval` cycles (the slowest stage's
period), which keeps every stage stall-free, so with ``o`` always ready each
output follows its input by exactly :attr:`Network.latency` cycles (both from
the static schedule).  Back-pressure on ``o`` is allowed; it only delays.

Weights and biases live in ``lib.memory`` and can be rewritten at run time
through ``weight_write`` (addresses of :mod:`nnhdl.hdl.weights`, one per
cycle, landing ``weight_write_latency`` cycles later).  With ``banks=2`` a
``bank_swap`` pulse flips ``active_bank``; every sample is tagged with the
active bank when it is admitted and each layer reads the bank of the sample it
holds, so a swap travels down the pipeline with the first sample after it and
no sample ever mixes the two weight sets.  Writes go to the bank that is not
active; samples admitted before a swap still read the old bank until they
leave, so wait ``latency`` cycles after a swap before overwriting it.
"""

from __future__ import annotations

from typing import Sequence

from amaranth import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import NnhdlError
from ..model import Model
from .conv import Conv1d
from .matrix import write_latency
from .mult import FABRIC, Multiplier
from .schedule import resolve_lanes, schedule
from .weights import weight_address_width, weight_write_signature

__all__ = ["Network"]


class Network(wiring.Component):
    """``model`` in gates.

    Members: ``i`` (In, one input vector per sample), ``o`` (Out, one output
    vector per sample), ``weight_write`` (In: ``addr``, ``data``, ``en``, one
    mantissa per cycle; with ``banks=2`` into the inactive bank),
    ``bank_swap`` (In, pulse: samples admitted from the next cycle on use the
    other bank), ``active_bank`` (Out, the bank the next admitted sample
    uses).  ``lanes`` sets the multipliers (or po2 shifters) per layer, see
    :func:`nnhdl.hdl.schedule.resolve_lanes`; ``folds`` the words per
    activation-cache entry (default :func:`nnhdl.hdl.schedule.cache_fold`); ``multiplier``
    how qb lanes multiply (:mod:`nnhdl.hdl.mult`: ``ECP5_MULT18`` for bitstreams).  Attributes:
    ``initiation_interval`` and ``latency`` (exact, from the static schedule;
    ``cycles_per_sample`` is the initiation interval), ``weight_write_latency``,
    ``addr_width``, ``lanes``, ``schedule``.
    """

    def __init__(self, model: Model, *, lanes: int | Sequence[int] | None = None, banks: int = 1,
                 folds: Sequence[int] | None = None, multiplier: Multiplier = FABRIC) -> None:
        try:
            model.validate()
            if banks not in (1, 2):
                raise NnhdlError(f"banks must be 1 or 2, got {banks}")
            self.lanes = resolve_lanes(model, lanes)
        except Exception:
            self._MustUse__silence = True  # a refused design is not an unused one
            raise
        self.model = model
        self.banks = banks
        self.multiplier = multiplier
        self.schedule = schedule(model, self.lanes, banks, folds)
        #: words per activation-cache entry, per layer (the cost model's choice unless ``folds`` is given)
        self.folds = [c.fold for c in self.schedule.layers]
        self.initiation_interval = self.schedule.initiation_interval
        self.latency = self.schedule.latency
        self.cycles_per_sample = self.initiation_interval
        #: cycles from a ``weight_write`` until the memory holds the value (writes are pipelined, one per cycle)
        self.weight_write_latency = 1 + max(write_latency(l.taps, l.out_dim, n)
                                            for l, n in zip(model.layers, self.lanes))
        w = model.qformat.width
        self.addr_width = weight_address_width(model)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(signed(w), model.input_dim))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(w), model.output_dim))),
            "weight_write": In(weight_write_signature(self.addr_width, w)),
            "bank_swap": In(1),
            "active_bank": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        model = self.model
        layers = [Conv1d(model.qformat, model.rounding, l, n, self.banks, f, self.multiplier)
                  for l, n, f in zip(model.layers, self.lanes, self.folds)]
        for n, c in enumerate(layers):
            m.submodules[f"layer{n}"] = c
        for a, b in zip(layers, layers[1:]):
            wiring.connect(m, a.o, b.i)

        # admit a sample at most every initiation_interval cycles: then no stage ever stalls
        first, last = layers[0], layers[-1]
        ii = self.initiation_interval
        wait = Signal(range(ii))
        admit = Signal()
        m.d.comb += [first.i.payload.eq(self.i.payload), first.i.valid.eq(self.i.valid & (wait == 0)),
                     self.i.ready.eq(first.i.ready & (wait == 0)), admit.eq(self.i.valid & self.i.ready)]
        with m.If(admit):
            m.d.sync += wait.eq(ii - 1)
        with m.Elif(wait != 0):
            m.d.sync += wait.eq(wait - 1)
        wiring.connect(m, last.o, wiring.flipped(self.o))

        # weight banks: the active bank tags each admitted sample; the tag travels with it
        if self.banks == 2:
            with m.If(self.bank_swap):
                m.d.sync += self.active_bank.eq(~self.active_bank)
            m.d.comb += first.i_bank.eq(self.active_bank)
            for a, b in zip(layers, layers[1:]):
                m.d.comb += b.i_bank.eq(a.o_bank)

        # runtime weight writes: register, then route to the layer owning the address
        wa = Signal.like(self.weight_write.addr)
        wd = Signal.like(self.weight_write.data)
        we, wb = Signal(), Signal()
        m.d.sync += [wa.eq(self.weight_write.addr), wd.eq(self.weight_write.data), we.eq(self.weight_write.en),
                     wb.eq(~self.active_bank if self.banks == 2 else 0)]
        blocks = model.weight_address_map()
        for n, c in enumerate(layers):
            base = blocks[2 * n][2]
            length = blocks[2 * n][3] + blocks[2 * n + 1][3]
            sel = (wa >= base) & (wa < base + length)
            m.d.comb += [c.wr.addr.eq(wa - base), c.wr.data.eq(wd), c.wr.en.eq(we & sel), c.wr.bank.eq(wb)]
        return m
