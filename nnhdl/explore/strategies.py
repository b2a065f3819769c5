"""Which points a sweep visits: every combination (grid), a seeded random draw, or a genetic algorithm.

The genetic algorithm evolves the *model* knobs for each hardware
combination (board, sample rate, clock) and each cost weight ``lambda``
separately; fitness = 1 / loss - lambda * cost, with loss the held-out
corner NMSE and cost the binding resource's share of the part in percent
(FPGA) or of the core's cycles per sample (Daisy).  Sweeping lambda from 0
upwards moves each population from "best sound at any cost" towards "cheapest
that still works", which traces the Pareto front.  All populations advance
in lockstep so one generation is one parallel batch; every random choice
comes from a generator seeded by (seed, hardware index, lambda index), so a
seed gives the same points on any engine.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Iterator

import numpy as np

from .space import DAISY_CLOCK_MHZ, HARDWARE_KNOBS, MODEL_KNOBS, Space, point_id

__all__ = ["grid", "random_points", "genetic", "fitness", "propose"]

Evaluate = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def grid(space: Space) -> Iterator[dict[str, Any]]:
    """Every combination of the space's choices (duplicates merged), lazily."""
    names = space.knob_names()
    seen: set[str] = set()
    for values in itertools.product(*(space.choices[n] for n in names)):
        k = space.normalise(dict(zip(names, values)))
        pid = point_id(k)
        if pid not in seen:
            seen.add(pid)
            yield k


def _draw(space: Space, rng: np.random.Generator, names: list[str], fixed: dict[str, Any] | None = None
          ) -> dict[str, Any]:
    """One point: each knob drawn independently from its choices (``fixed`` ones kept)."""
    k = dict(fixed or {})
    for n in names:
        if n not in k:
            c = space.choices[n]
            k[n] = c[int(rng.integers(len(c)))]
    return space.normalise(k)


def random_points(space: Space, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` distinct points, each knob drawn independently with a seeded generator (never the whole grid in
    memory); the whole grid when it has no more than ``n`` points.  The same for the same seed."""
    if space.size() <= n:
        return list(grid(space))
    rng = np.random.default_rng(seed)
    names = space.knob_names()
    out: dict[str, dict[str, Any]] = {}
    for _ in range(20 * n + 100):  # bounded: merged Daisy clocks make the grid smaller than size()
        k = _draw(space, rng, names)
        out.setdefault(point_id(k), k)
        if len(out) == n:
            break
    return list(out.values())


def fitness(row: dict[str, Any], lam: float) -> float:
    """1 / loss - lambda * cost; -inf for a point that cannot be built or did not train."""
    if row.get("status") != "ok":
        return -math.inf
    loss = row["nmse_corner_mean"]
    if not math.isfinite(loss):
        return -math.inf
    return 1.0 / max(loss, 1e-12) - lam * row["cost_percent"]


def _hardware(space: Space) -> list[dict[str, Any]]:
    names = list(HARDWARE_KNOBS)
    seen: dict[str, dict[str, Any]] = {}
    for values in itertools.product(*(space.choices[n] for n in names)):
        h = dict(zip(names, values))
        if h["board"] == "daisy":
            h["clock_mhz"] = DAISY_CLOCK_MHZ
        seen.setdefault(point_id(h), h)
    return list(seen.values())


def genetic(space: Space, evaluate: Evaluate, seed: int | None = None
            ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Run the GA; returns (every point visited by id, one history line per population and generation).

    ``evaluate(points) -> rows`` (rows carry ``status``, ``nmse_corner_mean``, ``cost_percent``) is called
    once per generation with the new points of all populations.
    """
    ga = space.ga
    seed = space.seed if seed is None else seed
    genes = [n for n in MODEL_KNOBS if len(space.choices[n]) > 1]
    populations = []
    for hi, hw in enumerate(_hardware(space)):
        for li, lam in enumerate(ga.lambdas):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(hi, li)))
            fixed = {**hw, **{n: space.choices[n][0] for n in MODEL_KNOBS if n not in genes}}
            pop: dict[str, dict[str, Any]] = {}
            for _ in range(20 * ga.population + 100):
                k = _draw(space, rng, genes, fixed)
                pop.setdefault(point_id(k), k)
                if len(pop) == ga.population:
                    break
            populations.append({"hardware": hw, "lambda": lam, "rng": rng, "fixed": fixed,
                                "members": list(pop.values())})
    visited: dict[str, dict[str, Any]] = {}
    rows: dict[str, dict[str, Any]] = {}
    history: list[dict[str, Any]] = []
    for generation in range(ga.generations):
        new = [k for p in populations for k in p["members"] if point_id(k) not in rows]
        unique = list({point_id(k): k for k in new}.values())
        for k, r in zip(unique, evaluate(unique) if unique else []):
            rows[point_id(k)] = r
            visited[point_id(k)] = k
        for p in populations:
            ranked = sorted(p["members"], key=lambda k: (-fitness(rows[point_id(k)], p["lambda"]), point_id(k)))
            best = ranked[0]
            history.append({"board": p["hardware"]["board"], "sample_rate": p["hardware"]["sample_rate"],
                            "clock_mhz": p["hardware"]["clock_mhz"], "lambda": p["lambda"],
                            "generation": generation, "best_point_id": point_id(best),
                            "best_fitness": fitness(rows[point_id(best)], p["lambda"])})
            if generation + 1 < ga.generations:
                p["members"] = _next_generation(space, ranked, rows, p, genes)
    return visited, history


def _next_generation(space: Space, ranked: list[dict[str, Any]], rows: dict[str, dict[str, Any]],
                     p: dict[str, Any], genes: list[str]) -> list[dict[str, Any]]:
    """Elites kept; the rest children of two tournament winners (uniform crossover, then mutation)."""
    ga, rng, lam = space.ga, p["rng"], p["lambda"]
    nxt = {point_id(k): k for k in ranked[:ga.elite]}

    def pick() -> dict[str, Any]:
        a, b = (ranked[int(i)] for i in rng.integers(len(ranked), size=2))
        fa, fb = fitness(rows[point_id(a)], lam), fitness(rows[point_id(b)], lam)
        return a if fa > fb or (fa == fb and point_id(a) <= point_id(b)) else b

    for _ in range(20 * ga.population + 100):
        if len(nxt) >= ga.population:
            break
        a, b = pick(), pick()
        child = dict(p["fixed"])
        for g in genes:
            child[g] = a[g] if rng.random() < 0.5 else b[g]
            if rng.random() < ga.mutation:
                c = space.choices[g]
                child[g] = c[int(rng.integers(len(c)))]
        child = space.normalise(child)
        nxt.setdefault(point_id(child), child)
    return list(nxt.values())


def propose(space: Space, sweep) -> Any:
    """Run ``space``'s strategy on a :class:`~.sweep.Sweep`; its :class:`~.sweep.SweepResult`."""
    if space.strategy == "ga":
        visited, history = genetic(space, sweep.evaluate)
        return sweep.finish(visited, history)
    points = list(grid(space)) if space.strategy == "grid" else random_points(space, space.points, space.seed)
    sweep.evaluate(points)
    return sweep.finish({point_id(k): k for k in points})
