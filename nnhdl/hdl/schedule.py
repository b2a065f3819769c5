"""Static schedule and resource estimate of a Network (no elaboration needed).

Every block has a fixed latency with no stalls (see each module's timing
note).  Each layer is a pipeline stage with its own sample in flight, so the
*initiation interval* (cycles between samples) is the slowest stage's period
and the *latency* (input to output) is the sum of the layers' latencies; the
Network admits a sample every ``initiation_interval`` cycles, which keeps
every stage free of stalls, and tests check both figures against simulation.  Resource figures are
estimates for ECP5 (MULT18X18D, DP16KD, LUT4, FF) from simple per-block models,
meant for comparing ``lanes`` choices, not replacing ``synth``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ..errors import NnhdlError
from ..fixedpoint import QFormat, accumulator_width
from ..model import Layer, Model
from ..ops import activation
from .arith import po2_layout
from .bram import cost as memory_cost, dp16kd, lutram_cells, ram_style, shallow
from .cache import cache_period, cache_word
from .conv import layer_latency, layer_period
from .dot import ADD_LEVELS_PER_STAGE, queue_depth, tree_stages
from .matrix import steps
from .mult import Ecp5Mult18
from .store import store_layout

__all__ = ["LayerCost", "Schedule", "resolve_lanes", "schedule", "cache_fold", "layer_memories", "weight_bits",
           "raw_costs"]


def resolve_lanes(model: Model, lanes: int | Sequence[int] | None) -> list[int]:
    """Per-layer multiplier counts.

    ``None``: ``in_dim`` lanes per layer (one tap vector per cycle).  An int
    applies to every layer (capped at the layer's taps); a sequence gives one
    value per layer.
    """
    if lanes is None:
        return [l.in_dim for l in model.layers]
    if isinstance(lanes, int):
        if lanes < 1:
            raise NnhdlError(f"lanes must be >= 1, got {lanes}")
        return [min(lanes, l.taps) for l in model.layers]
    lanes = [int(v) for v in lanes]
    if len(lanes) != len(model.layers):
        raise NnhdlError(f"--lanes gives {len(lanes)} values but the model has {len(model.layers)} layers")
    for n, (v, l) in enumerate(zip(lanes, model.layers)):
        if not 1 <= v <= l.taps:
            raise NnhdlError(f"lanes for layer {n} must be in 1..{l.taps} (K*in_dim), got {v}")
    return lanes


@dataclass
class LayerCost:
    layer: int
    kind: str
    lanes: int
    steps: int
    cycles: int   # latency of the layer (input handshake to output valid)
    period: int   # cycles between two samples this stage can take
    macs: int
    mult18: int
    dp16kd: int
    lut: int
    ff: int
    fold: int = 1  # words per activation-cache entry
    act_mult18: int = 0  # of ``mult18``, the activation's own (tanh's interpolation), not MAC lanes


@dataclass
class Schedule:
    layers: list[LayerCost] = field(default_factory=list)

    @property
    def initiation_interval(self) -> int:
        """Cycles between successive samples: the slowest stage's period."""
        return max(l.period for l in self.layers)

    @property
    def cycles_per_sample(self) -> int:
        """Throughput cost of one sample (the initiation interval)."""
        return self.initiation_interval

    @property
    def latency(self) -> int:
        """Cycles from a sample's input handshake to its ``o.valid`` (no stalls)."""
        return sum(l.cycles for l in self.layers)

    @property
    def bottleneck(self) -> int:
        """Index of the slowest stage (the first one if several tie)."""
        return max(range(len(self.layers)), key=lambda n: (self.layers[n].period, -n))

    def total(self, name: str) -> int:
        return sum(getattr(l, name) for l in self.layers)

    def mac_efficiency(self) -> float:
        """Useful MACs / (MAC multipliers x initiation interval); po2 layers count neither, nor do an
        activation's own multipliers."""
        mults = self.total("mult18") - self.total("act_mult18")
        macs = sum(l.macs for l in self.layers if l.kind != "po2")
        return macs / (mults * self.initiation_interval) if mults else 0.0

    def max_rate(self, clock_hz: float) -> float:
        """Samples per second at ``clock_hz`` (one sample per initiation interval)."""
        return clock_hz / self.initiation_interval


def _mults_per_lane(width: int) -> int:
    """MULT18X18D per W x W signed product (one up to 18 bits, four up to 36)."""
    return 1 if width <= 18 else 4


def cache_fold(layer: Layer, lanes: int, width: int) -> int:
    """Words per activation-cache entry: the cheapest memory that keeps the cache off the layer's critical path.

    Folding an entry into more, narrower words fills deep block RAMs (a 193 x 1024-bit cache takes 29
    blocks, the same as 965 x 208 bits in 12) and shrinks wide LUT RAM, but the cache then reads
    (K-1)*fold words per sample; a fold whose cache period would exceed the layer's period at fold 1 is
    never taken.  Cost: :func:`.bram.cost` (DP16KD and LUT RAM together); ties: the smallest fold.
    """
    if layer.kernel_size == 1:
        return 1
    limit = layer_period(layer, lanes)
    best = None
    for f in range(1, layer.in_dim + 1):
        if f > 1 and cache_word(layer.in_dim, f) == cache_word(layer.in_dim, f - 1):
            continue  # the same word width, only deeper
        if cache_period(layer.kernel_size, f) > limit:
            break
        shape = (cache_word(layer.in_dim, f) * width, layer.cache_length * f)
        c = memory_cost(*shape)
        if f > 1 and ram_style(*shape) == "block" and not shallow(*shape):
            continue  # a mapping yosys may split across modes: not counted exactly
        if best is None or c < best[0]:
            best = (c, f)
    return best[1]


def weight_bits(layer: Layer, fmt: QFormat) -> int:
    """Bits of one stored weight: the mantissa, or a po2 layer's (neg, shift, zero) code."""
    return po2_layout(fmt).size if layer.kind == "po2" else fmt.width


def layer_memories(layer: Layer, lanes: int, fmt: QFormat, banks: int, fold: int) -> list[tuple[str, tuple]]:
    """``(name, (width, depth, element bits or None))`` of each of the layer's memories, as the RTL builds them."""
    wb = weight_bits(layer, fmt)
    store = store_layout(lanes, wb, layer.out_dim * steps(layer.taps, lanes) * banks)
    mems = [("weights", shape) for shape in store.memories()]
    mems.append(("biases", (fmt.width, layer.out_dim * banks, None)))
    mems.append(("queue", (accumulator_width(fmt, layer.taps), queue_depth(lanes), None)))
    if layer.kernel_size > 1:
        mems.append(("cache", (cache_word(layer.in_dim, fold) * fmt.width, layer.cache_length * fold, None)))
    return mems


#: LUT and FF estimates, fitted (the smallest worst relative error) to nextpnr's TRELLIS_COMB / TRELLIS_FF on the
#: packed rows of ``benchmarks/hardware.py`` (yosys 0.70 + abc9, nextpnr 0.11; ``--fit`` prints the fit from
#: the saved rows): LUT = 4 TRELLIS_COMB per TRELLIS_DPR16X4 of LUT RAM (exact, from :mod:`.bram`)
#: + LUT_SCALE x the layers' logic model; FF = FF_SCALE x the layers' FF model.
LUT_SCALE = 1.183
FF_SCALE = 1.058
#: TRELLIS_COMB per TRELLIS_DPR16X4 (a 16 x 4 LUT-RAM cell fills the four LUTs of a slice's RAM half)
COMB_PER_LUTRAM = 4


def _dot_ff(lanes: int, width: int, wbits: int, registers_in_dsp: bool) -> int:
    """Flip-flops of the dot product's pipeline (``nnhdl.hdl.dot``): operands and products (unless a
    MULT18X18D holds them, :class:`~nnhdl.hdl.mult.Ecp5Mult18`), registered tree levels, and the beat's
    control (valid, first, last, bias) at every stage."""
    ff = 0 if registers_in_dsp else lanes * (width + wbits) + lanes * 2 * width
    nodes, level = lanes, 0
    while nodes > 1:
        nodes, level = -(-nodes // 2), level + 1
        if level % ADD_LEVELS_PER_STAGE == 0 or nodes == 1:
            ff += nodes * (2 * width + level)
    return ff + (2 + tree_stages(lanes)) * (width + 3)


def raw_costs(layer: Layer, lanes: int, fmt: QFormat, banks: int, fold: int,
              memories: list[tuple[str, tuple]] | None = None) -> tuple[float, int, float]:
    """``(logic LUTs, LUT-RAM cells, FFs)`` of a layer before the fitted scales: the structural model.

    Logic: adder tree (+ barrel shifter and negate for po2) per lane, accumulator, the rotating tap register's
    load/rotate muxes, requantise, control, the cache's tap assembly.  FFs: tap register, dot-product pipeline,
    accumulator and credit, outputs, cache taps, control.  ``memories``: :func:`layer_memories`, when already at hand."""
    width = fmt.width
    s = steps(layer.taps, lanes)
    acc = accumulator_width(QFormat(width, 0), layer.taps)
    per_lane = (4 * width + width * 2.4) if layer.kind == "po2" else 4 * width
    logic = (lanes * per_lane + acc * 2 + s * lanes * width + width * 3 + 200
             + (0 if layer.kernel_size == 1 else width * layer.in_dim))
    if memories is None:
        memories = layer_memories(layer, lanes, fmt, banks, fold)
    lutram = sum(lutram_cells(w, d) for _, (w, d, e) in memories if ram_style(w, d, e) == "distributed")
    in_dsp = layer.kind != "po2" and width <= Ecp5Mult18.width  # bitstreams multiply in MULT18X18D cells
    ff = (s * lanes * width + _dot_ff(lanes, width, weight_bits(layer, fmt), in_dsp) + acc + layer.out_dim * width
          + layer.kernel_size * layer.in_dim * width + 80
          + (cache_word(layer.in_dim, fold) * width if fold > 1 and layer.kernel_size > 1 else 0))  # write stage
    return logic, lutram, ff


def _layer_cost(n: int, layer: Layer, lanes: int, fmt: QFormat, banks: int, fold: int | None = None) -> LayerCost:
    fold = cache_fold(layer, lanes, fmt.width) if fold is None else fold
    memories = layer_memories(layer, lanes, fmt, banks, fold)
    bram = sum(dp16kd(*shape) for _, shape in memories)
    mult = 0 if layer.kind == "po2" else lanes * _mults_per_lane(fmt.width)
    logic, lutram, ff = raw_costs(layer, lanes, fmt, banks, fold, memories)
    act = activation(layer.activation).cost(fmt)  # the op's own ROM, multiplier and logic (0 for none/relu)
    return LayerCost(n, layer.kind, lanes, steps(layer.taps, lanes), layer_latency(layer, lanes, fold),
                     layer_period(layer, lanes, fold), layer.macs, mult + act.mult18, bram,
                     int(LUT_SCALE * logic + COMB_PER_LUTRAM * lutram) + act.lut, int(FF_SCALE * ff) + act.ff, fold,
                     act.mult18)


def schedule(model: Model, lanes: int | Sequence[int] | None = None, banks: int = 1,
             folds: Sequence[int] | None = None) -> Schedule:
    """Exact initiation interval and latency, estimated resources, for ``model`` with ``lanes``.

    ``folds``: words per activation-cache entry, per layer (default: :func:`cache_fold`'s choice).
    """
    ls = resolve_lanes(model, lanes)
    fs = [None] * len(ls) if folds is None else list(folds)
    return Schedule([_layer_cost(n, l, v, model.qformat, banks, f)
                     for n, (l, v, f) in enumerate(zip(model.layers, ls, fs))])


def parse_lanes(text: str | None) -> int | list[int] | None:
    """``--lanes`` value: empty -> default, ``4`` -> every layer, ``4,16,16`` -> per layer."""
    if text is None or str(text).strip() == "":
        return None
    try:
        parts = [int(p) for p in str(text).split(",")]
    except ValueError:
        raise NnhdlError(f"--lanes: {text!r} is not an integer or a comma-separated list of integers") from None
    return parts[0] if len(parts) == 1 else parts


def hw_report(model: Model, lanes: int | Sequence[int] | None, clock_mhz: float,
              sample_rate: int | None = None) -> str:
    """The ``info --hw`` text: per-layer cycles and resources, totals, and the sample-rate verdict."""
    from .network import Network  # noqa: F401  (fail early if Amaranth is missing)

    s = schedule(model, lanes)
    rows = [[c.layer, c.kind, c.lanes, c.steps, c.period, c.cycles, c.mult18, c.dp16kd, c.lut, c.ff]
            for c in s.layers]
    header = ["layer", "kind", "lanes", "steps", "period", "latency", "MULT18", "DP16KD", "~LUT", "~FF"]
    rows.append(["total", "", sum(c.lanes for c in s.layers), "", s.initiation_interval, s.latency,
                 s.total("mult18"), s.total("dp16kd"), s.total("lut"), s.total("ff")])
    cells = [[str(v) for v in header]] + [[str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    rate = sample_rate or model.sample_rate
    budget = clock_mhz * 1e6 / rate
    met = s.initiation_interval <= budget
    lines.append(f"initiation interval {s.initiation_interval} cycles per sample, latency {s.latency} cycles "
                 f"(layers pipelined, exact); MAC efficiency {100 * s.mac_efficiency():.1f}%")
    lines.append(f"at {clock_mhz:g} MHz   {budget:,.1f} cycles per sample available at {rate} Hz: "
                 f"{'MET' if met else 'NOT MET'} (max {s.max_rate(clock_mhz * 1e6):,.0f} samples/s)")
    lines.append("MULT18/DP16KD/LUT/FF are estimates for ECP5; run `synth` for the real counts")
    return "\n".join(lines)
