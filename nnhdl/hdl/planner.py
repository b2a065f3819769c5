"""The folding planner: per-layer lanes that meet a sample-rate deadline at the lowest cost.

A separate pass over the cost model of :mod:`.schedule` (FINN's
``set_folding`` idea): the pipeline's initiation interval is the slowest
layer's period, so every layer gets the fewest lanes whose period fits the
budget of ``clock / sample_rate`` cycles.  Every cost the model knows
(MULT18X18D, DP16KD, LUT) grows with a layer's lanes, so this choice is the
lexicographic optimum: fewest multipliers, then block RAMs, then LUTs.  With a
latency cap (``boards.pmod build --latency-in-period``: the board then sends
frame f's answer in frame f+2, so the whole latency must fit one sample
period; without it the answer goes out D frames later) the layers share the latency budget and a
small dynamic programme over the total latency picks the cheapest mix.

A plan that cannot meet the deadline is refused with the best sample rate the
part can reach and what bounds it (a layer's period at full lanes, the
multipliers, the block RAMs or the LUTs of the part).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from ..errors import NnhdlError
from ..fixedpoint import QFormat
from ..model import Layer, Model
from .bram import DP16KD_BITS
from .schedule import Schedule, _layer_cost, schedule, weight_bits
from .store import store_layout

__all__ = ["Part", "PARTS", "Plan", "plan", "lane_options", "dp16kd_bounds", "layer_dp16kd_bounds"]


@dataclass(frozen=True)
class Part:
    """An ECP5 part on a board, and the clock the planner assumes when none is given."""

    name: str
    mult18: int
    dp16kd: int
    lut: int  # LUT4s; an ECP5 slice pairs each LUT4 with a flip-flop, so also the FFs
    #: a system clock this part closes timing at for these designs (speed grade included)
    default_clock_mhz: float


PARTS: dict[str, Part] = {
    # 125 MHz: fpga_qb planned for 192 kHz placed and routed at 135 MHz (yosys 0.70 + nextpnr 0.11, speed 8)
    "ecpix5": Part("LFE5UM5G-85F (ECPIX-5)", 156, 208, 83640, 125.0),
    # 65 MHz: fpga_po2 planned for 192 kHz placed and routed on the 25F (speed 6) at 70.8 MHz
    "colorlight_i5": Part("LFE5U-25F (Colorlight i5)", 28, 56, 24288, 65.0),
}


@dataclass
class Plan:
    """A chosen folding and its figures (estimates except the cycle counts, which are exact)."""

    model: Model
    part: Part
    board: str
    lanes: list[int]
    schedule: Schedule
    clock_mhz: float
    clock_chosen: bool  # True: the planner picked the clock (none was given)
    sample_rate: int
    budget_cycles: int
    max_latency: int | None
    banks: int = 1
    #: words per activation-cache entry, per layer (pass as ``Network(folds=...)``)
    folds: list[int] | None = None

    @property
    def initiation_interval(self) -> int:
        return self.schedule.initiation_interval

    @property
    def latency(self) -> int:
        return self.schedule.latency

    def to_json(self) -> dict:
        s = self.schedule
        return {
            "model": self.model.name, "board": self.board, "part": self.part.name,
            "sample_rate": self.sample_rate, "clock_mhz": self.clock_mhz, "clock_chosen_by_planner": self.clock_chosen,
            "budget_cycles": self.budget_cycles, "max_latency_cycles": self.max_latency,
            "lanes": list(self.lanes), "mult18": s.total("mult18"), "dp16kd": s.total("dp16kd"),
            "lut": s.total("lut"), "ff": s.total("ff"),
            "initiation_interval": s.initiation_interval, "latency_cycles": s.latency,
            "mac_efficiency": round(s.mac_efficiency(), 4), "macs_per_sample": self.model.macs_per_sample,
            "banks": self.banks, "cache_folds": list(self.folds or [c.fold for c in s.layers]),
            "dp16kd_bounds": dict(zip(("capacity", "ports"), dp16kd_bounds(self.model, self.lanes, self.banks))),
            "layers": [{"layer": c.layer, "kind": c.kind, "lanes": c.lanes, "steps": c.steps, "period": c.period,
                        "latency": c.cycles, "mult18": c.mult18, "dp16kd": c.dp16kd,
                        "dp16kd_bound": _layer_bound(l, c.lanes, self.model.qformat, self.banks),
                        "cache_fold": c.fold, "lut": c.lut, "ff": c.ff}
                       for l, c in zip(self.model.layers, s.layers)],
        }

    def report(self) -> str:
        """The ``plan`` command's text: per layer, totals, the verdict."""
        s = self.schedule
        cap, ports = dp16kd_bounds(self.model, self.lanes, self.banks)
        header = ["layer", "kind", "MACs", "lanes", "steps", "period", "latency", "MULT18", "DP16KD", "bound", "~LUT",
                  "~FF"]
        rows = [[c.layer, c.kind, c.macs, c.lanes, c.steps, c.period, c.cycles, c.mult18, c.dp16kd,
                 _layer_bound(l, c.lanes, self.model.qformat, self.banks), c.lut, c.ff]
                for l, c in zip(self.model.layers, s.layers)]
        rows.append(["total", "", self.model.macs_per_sample, sum(self.lanes), "", s.initiation_interval, s.latency,
                     s.total("mult18"), s.total("dp16kd"), max(cap, ports), s.total("lut"), s.total("ff")])
        cells = [[str(v) for v in header]] + [[str(v) for v in r] for r in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
        lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        clock = f"{self.clock_mhz:g} MHz" + (" (chosen by the planner: a clock this part closes timing at; "
                                              "--clock-mhz overrides)" if self.clock_chosen else "")
        p = self.part
        lines += [
            f"part {p.name}: {s.total('mult18')}/{p.mult18} MULT18X18D, {s.total('dp16kd')}/{p.dp16kd} DP16KD, "
            f"~{s.total('lut')}/{p.lut} LUT4, ~{s.total('ff')}/{p.lut} FF (DP16KD lower bounds, {self.banks} weight bank"
            f"{'s' if self.banks > 1 else ''}: capacity {cap}, read ports {ports}; 'bound' is each layer's larger "
            f"one; memories small enough for LUT RAM go below it; DP16KD is yosys's mapping, exactly)",
            f"clock {clock}; {self.sample_rate} Hz -> budget {self.budget_cycles} cycles per sample"
            + (f", latency at most {self.max_latency}" if self.max_latency is not None else ""),
            f"initiation interval {s.initiation_interval} cycles (slowest: layer {s.bottleneck}), "
            f"latency {s.latency} cycles, MAC efficiency {100 * s.mac_efficiency():.1f}% "
            f"(useful MACs / (MULT18X18D x II))",
            f"lanes {','.join(str(v) for v in self.lanes)}   (pass as --lanes to override)",
            "MULT18/DP16KD/cycles are exact; LUT/FF are estimates for ECP5 (run `synth --pnr` for nextpnr's counts)",
        ]
        return "\n".join(lines)


def layer_dp16kd_bounds(layer: Layer, lanes: int, fmt: QFormat, banks: int = 1) -> tuple[int, int]:
    """A layer's two block-RAM bounds: capacity (its weight, bias and cache bits / 18 kbit) and bandwidth
    (its lanes' weights per cycle, as many per 36-bit read port as whole byte lanes hold: two of 16 bits).
    Memories small enough for LUT RAM can take the layer below them."""
    bits = banks * (int(layer.weight.size) * weight_bits(layer, fmt) + layer.out_dim * fmt.width)
    if layer.kernel_size > 1:
        bits += layer.cache_length * layer.in_dim * fmt.width
    per_port = store_layout(lanes, weight_bits(layer, fmt), 1).per_col
    return bits, -(-lanes // per_port)


def dp16kd_bounds(model: Model, lanes: Sequence[int], banks: int = 1) -> tuple[int, int]:
    """The two lower bounds on the whole network's block RAM: capacity (every weight, bias and cache bit,
    both banks, / 18 kbit) and read ports (the layers' bandwidth bounds, summed)."""
    per_layer = [layer_dp16kd_bounds(l, n, model.qformat, banks) for l, n in zip(model.layers, lanes)]
    return -(-sum(b for b, _ in per_layer) // DP16KD_BITS), sum(p for _, p in per_layer)


def _layer_bound(layer: Layer, lanes: int, fmt: QFormat, banks: int) -> int:
    bits, ports = layer_dp16kd_bounds(layer, lanes, fmt, banks)
    return max(-(-bits // DP16KD_BITS), ports)


def lane_options(model: Model, n: int) -> list[int]:
    """The lanes worth considering for layer ``n``: the fewest for each distinct number of steps."""
    taps = model.layers[n].taps
    out, seen = [], set()
    for lanes in range(1, taps + 1):
        s = -(-taps // lanes)
        if s not in seen:
            seen.add(s)
            out.append(lanes)
    return out


#: share of a part's LUT4s and FFs a plan may fill (estimates): on the 25F, nextpnr placed and routed a plan
#: at 46% TRELLIS_COMB / 71% TRELLIS_FF and found no legal placement at 94% / 124%
FILL = 0.85
#: the same for flip-flops, lower: the FF model runs 3-16% under nextpnr's TRELLIS_FF (benchmarks/hardware.py).
#: On the 25F with today's RTL, 17,026 real FFs (70%, fpga_wide's family with 25 filters) placed and 19,935
#: (82%, 32 filters, 74% estimated) found no legal placement; 0.68 x 1.10 ~ 75%.
FF_FILL = 0.68


def _fits(s: Schedule, part: Part) -> str | None:
    """The first resource of ``part`` that ``s`` overflows, or None (LUTs up to :data:`FILL`, FFs up to
    :data:`FF_FILL`)."""
    if s.total("mult18") > part.mult18:
        return f"multipliers ({s.total('mult18')} MULT18X18D > {part.mult18})"
    if s.total("dp16kd") > part.dp16kd:
        return f"block RAM ({s.total('dp16kd')} DP16KD > {part.dp16kd})"
    if s.total("lut") > FILL * part.lut:
        return f"LUTs (~{s.total('lut')} LUT4 > {FILL:.0%} of {part.lut})"
    if s.total("ff") > FF_FILL * part.lut:
        return f"flip-flops (~{s.total('ff')} FF > {FF_FILL:.0%} of {part.lut})"
    return None


def _choose(model: Model, budget: int, max_latency: int | None, banks: int) -> list[tuple[int, int]] | None:
    """Cheapest ``(lanes, cache fold)`` per layer with every period <= budget (and total latency <=
    max_latency), or None.  Under a latency cap a layer may also keep its cache unfolded (fold 1: fewer
    cycles, maybe more block RAM)."""
    per_layer = []
    for n, layer in enumerate(model.layers):
        opts = []
        for lanes in lane_options(model, n):
            c = _layer_cost(n, layer, lanes, model.qformat, banks)
            if c.period <= budget:
                opts.append(((lanes, c.fold), c))
                if max_latency is not None and c.fold != 1:
                    opts.append(((lanes, 1), _layer_cost(n, layer, lanes, model.qformat, banks, 1)))
        if not opts:
            return None
        per_layer.append(opts)
    if max_latency is None:
        return [opts[0][0] for opts in per_layer]  # the fewest lanes is the cheapest on every count
    # dynamic programme over the total latency: best[lat] = (cost, choices) of the cheapest prefix
    best: dict[int, tuple[tuple[int, int, int], list[tuple[int, int]]]] = {0: ((0, 0, 0), [])}
    for opts in per_layer:
        nxt: dict[int, tuple[tuple[int, int, int], list[tuple[int, int]]]] = {}
        for lat, (cost, chosen) in best.items():
            for v, c in opts:
                tl = lat + c.cycles
                if tl > max_latency:
                    continue
                tc = (cost[0] + c.mult18, cost[1] + c.dp16kd, cost[2] + c.lut)
                if tl not in nxt or tc < nxt[tl][0]:
                    nxt[tl] = (tc, chosen + [v])
        # drop dominated states: a longer prefix must be strictly cheaper to stay
        pruned, floor = {}, None
        for tl in sorted(nxt):
            if floor is None or nxt[tl][0] < floor:
                pruned[tl] = nxt[tl]
                floor = nxt[tl][0]
        best = pruned
        if not best:
            return None
    return min(best.values(), key=lambda v: v[0])[1]


def _schedule(model: Model, chosen: list[tuple[int, int]], banks: int) -> Schedule:
    return schedule(model, [v for v, _ in chosen], banks, [f for _, f in chosen])


def _best_rate(model: Model, part: Part, clock_hz: float, margin: int, latency_slack: int | None,
               banks: int) -> tuple[float, str]:
    """The highest sample rate a plan fits ``part`` at, and what stops it going faster."""
    fastest = max(_layer_cost(n, l, l.taps, model.qformat, banks).period for n, l in enumerate(model.layers))

    def ok(budget: int) -> bool:
        lat = None if latency_slack is None else budget - latency_slack
        chosen = _choose(model, budget - margin, lat, banks)
        return chosen is not None and _fits(_schedule(model, chosen, banks), part) is None

    lo, hi = fastest + margin, fastest + margin
    slowest = max(_layer_cost(n, l, 1, model.qformat, banks).period for n, l in enumerate(model.layers))
    while not ok(hi):
        if hi > 2 * (slowest + margin) + (latency_slack or 0) + schedule(model, 1, banks).latency:
            why = _fits(schedule(model, 1, banks), part) or "the latency cap"
            return 0.0, f"{why} even with one lane per layer"
        hi *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    budget = hi
    if budget == fastest + margin:
        n = max(range(len(model.layers)),
                key=lambda k: _layer_cost(k, model.layers[k], model.layers[k].taps, model.qformat, banks).period)
        why = (f"layer {n}'s period at full lanes ({fastest} cycles: one output per cycle, or its "
               f"activation cache)")
        if latency_slack is not None:
            why += " and the latency cap"
    else:
        lat = None if latency_slack is None else budget - 1 - latency_slack
        chosen = _choose(model, budget - 1 - margin, lat, banks)
        why = ("the latency cap (the whole latency must fit one sample period)" if chosen is None
               else _fits(_schedule(model, chosen, banks), part) or "the part")
    return clock_hz / budget, why


def plan(model: Model, board: str = "ecpix5", *, sample_rate: int | None = None, clock_mhz: float | None = None,
         banks: int = 1, margin: int = 0, latency_in_period: bool = False) -> Plan:
    """Plan ``model`` for ``board`` at ``sample_rate`` (default: the model's) and ``clock_mhz``.

    ``margin``: cycles per sample the surroundings need (the board's crossing
    and registers).  ``latency_in_period``: the whole latency, not only the
    initiation interval, must fit the sample period (the board's f+2 timing, D = 0).
    """
    model.validate()
    if board not in PARTS:
        raise NnhdlError(f"unknown board {board!r}; choose one of {', '.join(PARTS)}")
    part = PARTS[board]
    rate = int(sample_rate or model.sample_rate)
    if rate <= 0:
        raise NnhdlError(f"sample rate must be positive, got {rate}")
    clock_chosen = clock_mhz is None
    mhz = part.default_clock_mhz if clock_chosen else float(clock_mhz)
    if not mhz > 0:
        raise NnhdlError(f"clock must be positive, got {clock_mhz} MHz")
    budget = int(math.floor(mhz * 1e6 / rate))
    max_latency = budget - margin if latency_in_period else None
    chosen = _choose(model, budget - margin, max_latency, banks)
    problem = None
    if chosen is None:
        problem = "no lanes make every layer fast enough"
    else:
        problem = _fits(_schedule(model, chosen, banks), part)
        if problem:
            problem = f"the cheapest plan that meets the deadline overflows the {problem}"
    if problem:
        best, why = _best_rate(model, part, mhz * 1e6, margin, margin if latency_in_period else None, banks)
        verdict = (f"best achievable {best:,.0f} samples/s, bound by {why}" if best
                   else f"it fits at no sample rate: {why}")
        raise NnhdlError(f"cannot run {model.name or 'the model'} at {rate} Hz on the {part.name} at {mhz:g} MHz "
                         f"({budget} cycles per sample): {problem}; {verdict}")
    sched = _schedule(model, chosen, banks)
    return Plan(model, part, board, [v for v, _ in chosen], sched, mhz, clock_chosen, rate, budget, max_latency, banks,
                [f for _, f in chosen])


def resolve_plan_or_lanes(model: Model, lanes: int | Sequence[int] | None, **plan_args) -> list[int]:
    """``--lanes`` when given, else the planner's lanes (the default for every entry point)."""
    from .schedule import resolve_lanes

    if lanes is not None:
        return resolve_lanes(model, lanes)
    return plan(model, **plan_args).lanes
