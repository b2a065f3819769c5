"""``--target reference``: the streaming golden model (whole-sequence for speed)."""

from __future__ import annotations

import argparse
import time

import numpy as np

from .model import Model
from .reference import evaluate
from .targets import Result


def run(model: Model, x: np.ndarray, options: argparse.Namespace) -> Result:
    start = time.perf_counter()
    y = evaluate(model, x)
    seconds = time.perf_counter() - start
    return Result(y, {"samples/s": f"{len(x) / seconds:,.0f}" if seconds > 0 else "inf"})
