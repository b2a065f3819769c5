"""``run --target rtl``: the generated Network simulated in amaranth.sim or Verilator."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

import numpy as np

from ..errors import NnhdlError
from ..model import Model
from ..reference import check_input
from ..targets import Result


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(model: Model, x: np.ndarray, options: argparse.Namespace) -> Result:
    from ..hdl.network import Network
    from ..hdl.schedule import parse_lanes, resolve_lanes, schedule

    x = check_input(model, x)
    if len(x) == 0:  # as the other targets: no samples in, no samples out
        return Result(np.zeros((0, model.output_dim), dtype=np.int64), {})
    backend = getattr(options, "backend", None) or "pysim"
    lanes = parse_lanes(getattr(options, "lanes", None))
    vcd = getattr(options, "vcd", None)
    figures: dict[str, object] = {"cycles per sample (predicted)": schedule(model, lanes).cycles_per_sample,
                                  "lanes": ",".join(str(v) for v in resolve_lanes(model, lanes))}
    start = time.perf_counter()
    if backend == "pysim":
        from .pysim import stream_through

        if len(x) > 2000:
            _log(f"rtl/pysim: {len(x):,} samples at ~1,000 cycles/s; --backend verilator is much faster")
        from ..outputs import output_file

        with output_file(vcd, "waveform trace") if vcd else contextlib.nullcontext() as trace:
            res = stream_through(Network(model, lanes=lanes), x, vcd=str(trace) if vcd else None,
                                 progress=_log if len(x) >= 50 else None)
        y = res.output
        lat = sorted(set(res.latencies))
        figures["cycles per sample (simulated)"] = lat[0] if len(lat) == 1 else f"{lat[0]}..{lat[-1]}"
    elif backend == "verilator":
        if vcd:
            raise NnhdlError("--vcd needs --backend pysim (the Verilator harness does not trace)")
        from .verilator import VerilatorSim

        sim = VerilatorSim(model, lanes=lanes, log=_log)
        start = time.perf_counter()
        y = sim.run(x)
        lo, hi = sim.figures.get("latency_min"), sim.figures.get("latency_max")
        figures["cycles per sample (simulated)"] = lo if lo == hi else f"{lo}..{hi}"
    else:
        raise NnhdlError(f"unknown --backend {backend!r}; choose pysim or verilator")
    seconds = time.perf_counter() - start
    figures["samples/s"] = f"{len(x) / seconds:,.0f}" if seconds > 0 else "inf"
    if vcd:
        figures["trace"] = vcd
    return Result(y, figures)
