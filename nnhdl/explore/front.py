"""The Pareto front of (error, cost) points, both to be minimised: what the report draws and recommends."""

from __future__ import annotations

from typing import Sequence

__all__ = ["pareto_front"]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point dominates (<= on both axes, < on one), sorted by cost then error.

    One sweep over the points sorted by cost: a point is on the front when its error is below every error
    seen at a lower cost.  Equal points are all kept (none dominates another).
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][1], points[i][0]))
    front: list[int] = []
    best = float("inf")
    last: tuple[float, float] | None = None
    for i in order:
        e, c = points[i]
        if e < best or (last is not None and (e, c) == last):
            front.append(i)
            best = min(best, e)
            last = (e, c)
    return front
