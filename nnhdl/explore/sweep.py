"""A whole sweep: the strategy proposes points, the runner evaluates them, rows come back by point id."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .cache import Cache, point_key, tool_versions
from .runner import Engine, Task, run_batch
from .space import Space, point_id

__all__ = ["Sweep", "SweepResult"]


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

    def finish(self, points: dict[str, dict[str, Any]], ga_history: list[dict[str, Any]] | None = None
               ) -> SweepResult:
        ids = sorted(points)
        return SweepResult([self.row(i, points[i]) for i in ids],
                           {i: self.results[i].get("seconds", {}) for i in ids}, ga_history or [])


def _describe(result: dict[str, Any]) -> str:
    r = result["row"]
    if r["status"] != "ok":
        return f"{r['status']} ({r['reason'][:90]})"
    cost = f"{r['instructions']:,.0f} instructions" if "instructions" in r else \
        f"{r['mult18']} MULT18, {r['dp16kd']} DP16KD, ~{r['lut']} LUT"
    return f"corner NMSE {r['nmse_corner_mean']:.4g}, {cost}"
