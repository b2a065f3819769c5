"""One layer: activation cache -> row-by-matrix -> requantise -> activation.

Outputs are requantised as they leave the dot product (one per cycle at most)
and shifted into the output vector, which is offered on ``o`` once complete.
The cache, the row-by-matrix and the output vector may each hold a different
sample, so a layer is a pipeline stage (see :func:`layer_period`).
"""

from __future__ import annotations

from amaranth import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from ..fixedpoint import QFormat, po2_encode
from ..model import Layer
from ..ops import activation
from .arith import activate, bits_for, requantize
from .cache import ActivationCache, cache_latency, cache_period
from .dot import dot_latency, queue_depth
from .matrix import Po2RowByMatrix, RowByMatrix, steps
from .mult import FABRIC, Multiplier
from .weights import weight_write_signature

__all__ = ["Conv1d", "Po2Conv1d", "layer_latency", "layer_period"]


def layer_latency(layer: Layer, lanes: int, fold: int = 1) -> int:
    """Cycles from the layer's input handshake to its ``o.valid`` with no stalls.

    cache, one cycle to load the tap register, one to read the first weights,
    one beat per cycle, the dot-product pipeline, one cycle to requantise, and the
    activation's ``pipeline_stages``.
    ``fold``: words per cache entry (see :class:`.cache.ActivationCache`).
    """
    beats = layer.out_dim * steps(layer.taps, lanes)
    act = activation(layer.activation).pipeline_stages  # the activation's own registers (tanh: 3)
    return cache_latency(layer.kernel_size, fold) + 1 + beats + dot_latency(lanes) + 1 + act


def layer_period(layer: Layer, lanes: int, fold: int = 1) -> int:
    """Fewest cycles between two input handshakes for which the layer never stalls.

    The row-by-matrix takes a tap vector, issues its beats and is ready two
    cycles after the last one; the cache is ready one cycle after handing its
    taps over.  Offered samples this far apart (and an output always taken),
    every handshake inside the layer happens the cycle it is first offered.
    """
    beats = layer.out_dim * steps(layer.taps, lanes)
    return max(beats + 2, cache_period(layer.kernel_size, fold))


def _bank_tags(lanes: int) -> int:
    """Samples a layer can hold between its row-by-matrix taking them and ``o`` handing them on, with
    back-pressure: the output vector, one per row the dot product may hold (its credit), one in the
    row-by-matrix (+ spare)."""
    return queue_depth(lanes) + 4


class Conv1d(wiring.Component):
    """A causal dilated 1-D convolution layer of any shape (kind from the layer, or forced by a subclass).

    Members: ``i`` (In, one input vector per sample), ``o`` (Out, one output
    vector per sample), ``i_bank`` (In, sampled with each ``i`` handshake: the
    weight bank this sample is computed with), ``o_bank`` (Out, the bank of
    the sample on ``o``: the tag travels with its sample, so a bank swap
    never mixes two weight sets in one sample), ``wr`` (runtime weight writes).
    """

    force_po2: bool | None = None

    def __init__(self, fmt: QFormat, rounding: str, layer: Layer, lanes: int, banks: int = 1, fold: int = 1,
                 multiplier: Multiplier = FABRIC) -> None:
        self.fmt, self.rounding, self.layer, self.lanes, self.banks = fmt, rounding, layer, lanes, banks
        self.multiplier = multiplier  # qb layers' lanes (po2 layers use shifters)
        self.fold = fold  # words per activation-cache entry (the cost model's choice: schedule.cache_fold)
        self.po2 = layer.kind == "po2" if self.force_po2 is None else self.force_po2
        try:
            if self.po2:
                po2_encode(layer.weight, fmt)  # refuses a weight that is not a power of two
            if not 1 <= lanes <= layer.taps:
                raise ValueError(f"lanes must be in 1..{layer.taps}, got {lanes}")
            if not 1 <= fold <= layer.in_dim:
                raise ValueError(f"fold must be in 1..{layer.in_dim}, got {fold}")
        except ValueError:
            self._MustUse__silence = True  # a refused design is not an unused one
            raise
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(signed(fmt.width), layer.in_dim))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(fmt.width), layer.out_dim))),
            "i_bank": In(1),
            "o_bank": Out(1),
            "wr": In(weight_write_signature(bits_for(layer.params - 1), fmt.width, bank=True)),
        })

    def elaborate(self, platform):
        m = Module()
        fmt, layer = self.fmt, self.layer
        cls = Po2RowByMatrix if self.po2 else RowByMatrix
        m.submodules.cache = cache = ActivationCache(fmt.width, layer.in_dim, layer.kernel_size, layer.dilation,
                                                     self.fold)
        m.submodules.rbm = rbm = cls(fmt, layer.weight.reshape(layer.taps, layer.out_dim), layer.bias, self.lanes,
                                     self.banks, self.multiplier)
        wiring.connect(m, wiring.flipped(self.i), cache.i)
        wiring.connect(m, cache.o, rbm.i)
        if self.banks == 2:
            # the bank tag of each sample: cache -> row-by-matrix (its reads) -> a FIFO until ``o``
            bank_c, bank_r = Signal(), Signal()
            m.submodules.tags = tags = SyncFIFO(width=1, depth=_bank_tags(self.lanes))
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += bank_c.eq(self.i_bank)
            with m.If(rbm.i.valid & rbm.i.ready):
                m.d.sync += bank_r.eq(bank_c)
            m.d.comb += [rbm.bank.eq(bank_r), tags.w_data.eq(bank_c), tags.w_en.eq(rbm.i.valid & rbm.i.ready),
                         self.o_bank.eq(tags.r_data), tags.r_en.eq(self.o.valid & self.o.ready)]
        m.d.comb += [rbm.wr.addr.eq(self.wr.addr), rbm.wr.data.eq(self.wr.data), rbm.wr.en.eq(self.wr.en),
                     rbm.wr.bank.eq(self.wr.bank)]

        # requantise -> activation (its pipeline, if any, advances with the beats: en = rbm.o.ready)
        y = Signal(signed(fmt.width))
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid), rbm.o.ready.eq(en)]
        m.d.comb += y.eq(activate(m, requantize(rbm.o.payload, fmt, self.rounding), en, fmt, layer.activation,
                                  layer.relu_max))
        beat = rbm.o.valid & rbm.o.ready
        for k in range(activation(layer.activation).pipeline_stages):  # each beat's valid, stage by stage
            v = Signal(name=f"act_valid{k}")
            with m.If(en):
                m.d.sync += v.eq(beat)
            beat = v & en
        n = layer.out_dim
        count = Signal(range(max(n, 2)))
        flat = self.o.payload.as_value()
        w = fmt.width
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(beat):
            m.d.sync += flat.eq(flat >> w | y.as_unsigned() << (w * (n - 1)))
            with m.If(count == n - 1):
                m.d.sync += [count.eq(0), self.o.valid.eq(1)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        return m


class Po2Conv1d(Conv1d):
    """A layer computed with shifts and adds only (all weights powers of two)."""

    force_po2 = True
