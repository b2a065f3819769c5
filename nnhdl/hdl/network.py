"""The whole model as one component: input vectors in, output vectors out, one per sample.

Layers are chained with ``lib.stream``; one sample is in flight at a time
(``busy``), so the latency is the static :attr:`Network.cycles_per_sample`
and the weight bank can flip between samples only.  Weights and biases live in
``lib.memory`` and can be rewritten at run time through ``weight_write``
(addresses of :mod:`nnhdl.hdl.weights`, one per cycle, landing
``weight_write_latency`` cycles later); with ``banks=2`` writes go to the
inactive bank and a ``bank_swap`` pulse activates it at the next sample boundary.
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
from .schedule import resolve_lanes, schedule
from .weights import weight_address_map, weight_address_width, weight_write_signature

__all__ = ["Network"]


class Network(wiring.Component):
    """``model`` in gates.

    Ports: ``i`` (one input vector per sample), ``o`` (one output vector per
    sample), ``weight_write`` (``addr``, ``data``, ``en``: one mantissa per
    cycle; with ``banks=2`` into the inactive bank), ``bank_swap`` (pulse),
    ``active_bank``, ``busy``.  ``lanes`` sets the multipliers (or po2
    shifters) per layer, see :func:`nnhdl.hdl.schedule.resolve_lanes`.
    Attributes: ``cycles_per_sample`` (exact, from the static schedule),
    ``weight_write_latency``, ``addr_width``, ``lanes``.
    """

    def __init__(self, model: Model, *, lanes: int | Sequence[int] | None = None, banks: int = 1) -> None:
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
        self.schedule = schedule(model, self.lanes, banks)
        self.cycles_per_sample = self.schedule.cycles_per_sample
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
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        model = self.model
        layers = [Conv1d(model.qformat, model.rounding, l, n, self.banks) for l, n in zip(model.layers, self.lanes)]
        for n, c in enumerate(layers):
            m.submodules[f"layer{n}"] = c
        for a, b in zip(layers, layers[1:]):
            wiring.connect(m, a.o, b.i)

        # one sample in flight: admit the next only when the previous has left
        first, last = layers[0], layers[-1]
        m.d.comb += [first.i.payload.eq(self.i.payload), first.i.valid.eq(self.i.valid & ~self.busy),
                     self.i.ready.eq(first.i.ready & ~self.busy)]
        wiring.connect(m, last.o, wiring.flipped(self.o))
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.busy.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += self.busy.eq(1)

        # weight banks
        pending = Signal()
        if self.banks == 2:
            with m.If(self.bank_swap):
                m.d.sync += pending.eq(1)
            with m.If(~self.busy & (pending | self.bank_swap)):
                m.d.sync += [self.active_bank.eq(~self.active_bank), pending.eq(0)]
        for c in layers:
            m.d.comb += c.bank.eq(self.active_bank)

        # runtime weight writes: register, then route to the layer owning the address
        wa = Signal.like(self.weight_write.addr)
        wd = Signal.like(self.weight_write.data)
        we, wb = Signal(), Signal()
        m.d.sync += [wa.eq(self.weight_write.addr), wd.eq(self.weight_write.data), we.eq(self.weight_write.en),
                     wb.eq(~self.active_bank if self.banks == 2 else 0)]
        blocks = weight_address_map(model)
        for n, c in enumerate(layers):
            base = blocks[2 * n][2]
            length = blocks[2 * n][3] + blocks[2 * n + 1][3]
            sel = (wa >= base) & (wa < base + length)
            m.d.comb += [c.wr.addr.eq(wa - base), c.wr.data.eq(wd), c.wr.en.eq(we & sel), c.wr.bank.eq(wb)]
        return m
