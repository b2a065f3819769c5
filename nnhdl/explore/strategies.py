"""Which points a sweep visits: every combination (grid) or a seeded random draw of them."""

from __future__ import annotations

from typing import Any

import numpy as np

from .space import Space

__all__ = ["grid", "random_points"]


def grid(space: Space) -> list[dict[str, Any]]:
    """Every combination of the space's choices."""
    return space.grid()


def random_points(space: Space, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` distinct combinations drawn without replacement (all of them when ``n`` >= the grid); the same
    for the same seed."""
    points = space.grid()
    if n >= len(points):
        return points
    rng = np.random.default_rng(seed)
    return [points[i] for i in sorted(rng.choice(len(points), size=n, replace=False))]
