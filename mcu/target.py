"""``python -m nnhdl run --target c``: the emitted Q4.12 C, compiled with the host gcc, computes the samples."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from nnhdl.model import Model
from nnhdl.reference import check_input
from nnhdl.targets import Result

from .build import build_host, run_host
from .export import generate
from .toolchain import cache_dir


def run(model: Model, x: np.ndarray, options: argparse.Namespace) -> Result:
    x = check_input(model, x)
    result = generate(model, "q412")
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        start = time.perf_counter()
        prog = build_host(result, Path(tmp))
        built = time.perf_counter()
        y, _ = run_host(prog, x)
        done = time.perf_counter()
    rate = len(x) / (done - built) if done > built else float("inf")
    return Result(y, {"compile": f"{built - start:.2f} s", "samples/s (incl. file I/O)": f"{rate:,.0f}"})
