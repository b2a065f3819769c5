"""A whole sweep: the strategy proposes points, the runner evaluates them, rows come back by point id."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .cache import Cache, point_key, tool_versions
from .runner import Engine, Task, run_batch
from ..synth import PNR_CELLS  # planner figure -> nextpnr utilisation line
from .space import Space, point_id

__all__ = ["Sweep", "SweepResult"]

PNR = "nnhdl.explore.evaluate:place_and_route_point"


@dataclass
class SweepResult:
    rows: list[dict[str, Any]]  # one per point, sorted by point id
    seconds: dict[str, dict[str, float]]  # point id -> wall-clock seconds per phase
    ga_history: list[dict[str, Any]] = field(default_factory=list)


class Sweep:
    """Evaluates batches of points of one space on one engine, through the cache in ``out/cache``."""

    def __init__(self, space: Space, out: Path, engine: Engine,
                 say: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True)) -> None:
        self.space, self.out, self.engine, self.say = space, Path(out), engine, say
        self.cache = Cache(self.out / "cache", say)
        self.work = self.out / "work"
        self.versions = tool_versions()
        self.results: dict[str, dict[str, Any]] = {}  # every point evaluated so far, by id

    def task(self, knobs: dict[str, Any]) -> Task:
        s = self.space
        budget = s.budget.as_dict()
        dims = {"input_dim": s.input_dim, "output_dim": s.output_dim}
        return Task(point_id(knobs), point_key(knobs, budget, dims, self.versions),
                    {"knobs": knobs, "budget": budget, **dims, "work": str(self.work.resolve())})

    def evaluate(self, points: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows of ``points`` (knobs first, then figures), in the order given."""
        tasks = [self.task(k) for k in points]
        todo = [t for t in tasks if t.point_id not in self.results]
        self.results.update(run_batch(todo, self.engine, self.cache, self.say, _describe))
        return [self.row(t.point_id, k) for t, k in zip(tasks, points)]

    def row(self, pid: str, knobs: dict[str, Any]) -> dict[str, Any]:
        return {"point_id": pid, **knobs, **self.results[pid]["row"]}

    def references(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The bundled models scored and costed for every board, rate and clock of ``rows`` (in this process:
        a plan or one short QEMU run each), cached like points."""
        from .evaluate import REFERENCE_MODELS, evaluate_reference
        from .space import HARDWARE_KNOBS

        budget = self.space.budget.as_dict()
        hardware = {point_id(h): h for h in ({n: r[n] for n in HARDWARE_KNOBS} for r in rows)}
        out = []
        for hid in sorted(hardware):
            for name in REFERENCE_MODELS:
                key = point_key({"reference": name, **hardware[hid]}, budget, {}, self.versions)
                hit = self.cache.get(key)
                if hit is None:
                    hit = {"row": evaluate_reference(name, hardware[hid], budget, str(self.work.resolve()))}
                    self.cache.put(key, hit)
                out.append(hit["row"])
        return out

    def place_and_route(self, result: SweepResult, n: int) -> int:
        """yosys + nextpnr for the ``n`` lowest-error points of each FPGA board/rate/clock's estimated front
        (NMSE vs the binding resource's share); their rows then carry nextpnr's counts (source
        ``placed_and_routed``, the estimates kept as ``*_estimated``) and Fmax.  Returns how many ran."""
        from .front import pareto_front
        from .report import group_name

        groups: dict[str, list[dict[str, Any]]] = {}
        for r in result.rows:
            if r["board"] != "daisy" and r["status"] == "ok":
                groups.setdefault(group_name(r), []).append(r)
        chosen: list[dict[str, Any]] = []
        for members in groups.values():
            front = [members[i] for i in pareto_front([(r["nmse_corner_mean"], r["cost_percent"]) for r in members])]
            chosen += sorted(front, key=lambda r: (r["nmse_corner_mean"], r["point_id"]))[:n]
        tasks = []
        for r in chosen:
            knobs = {k: r[k] for k in self.space.knob_names()}
            key = self.task(knobs).key
            blob = self.cache.blob(key)
            if blob is None:
                self.say(f"explore: {r['point_id']}: no trained model in the cache; not placed and routed")
                continue
            tasks.append(Task(r["point_id"], f"{key}-pnr",
                              {"model_npz": blob, "board": r["board"], "clock_mhz": r["clock_mhz_planned"],
                               "lanes": [int(v) for v in r["lanes"].split(",")], "work": str(self.work.resolve())},
                              PNR))
        if not tasks:
            return 0
        self.say(f"explore: placing and routing {len(tasks)} front point{'s' if len(tasks) > 1 else ''}")
        done = run_batch(tasks, self.engine, self.cache, self.say, _describe_pnr)
        for r in result.rows:
            p = done.get(r["point_id"])
            if p is None:
                continue
            result.seconds.setdefault(r["point_id"], {})["pnr"] = p["seconds"]
            if "error" in p:
                r["pnr_error"] = p["error"]
                continue
            for figure, cell in PNR_CELLS.items():
                r[f"{figure}_estimated"] = r[figure]
                r[figure], r[f"{figure}_source"] = int(p["used"].get(cell, 0)), "placed_and_routed"
            r["fmax_mhz"], r["fmax_mhz_source"] = p["fmax_mhz"], "placed_and_routed"
            r["meets_clock"] = p["fmax_mhz"] is not None and p["fmax_mhz"] >= r["clock_mhz_planned"]
        return len(tasks)

    def finish(self, points: dict[str, dict[str, Any]], ga_history: list[dict[str, Any]] | None = None
               ) -> SweepResult:
        ids = sorted(points)
        return SweepResult([self.row(i, points[i]) for i in ids],
                           {i: self.results[i].get("seconds", {}) for i in ids}, ga_history or [])


def _describe_pnr(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"place and route failed ({result['error'][:90]})"
    u = result["used"]
    return (f"nextpnr: {u.get('MULT18X18D', 0)} MULT18X18D, {u.get('DP16KD', 0)} DP16KD, "
            f"{u.get('TRELLIS_COMB', 0)} TRELLIS_COMB, Fmax {result['fmax_mhz']} MHz")


def _describe(result: dict[str, Any]) -> str:
    r = result["row"]
    if r["status"] != "ok":
        return f"{r['status']} ({r['reason'][:90]})"
    cost = f"{r['instructions']:,.0f} instructions" if "instructions" in r else \
        f"{r['mult18']} MULT18, {r['dp16kd']} DP16KD, ~{r['lut']} LUT"
    return f"corner NMSE {r['nmse_corner_mean']:.4g}, {cost}"
