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


def _span(values) -> object:
    """``v`` when all equal, else ``lo..hi`` (``-`` for none)."""
    values = sorted(v for v in values if v is not None)
    if not values:
        return "-"
    return values[0] if values[0] == values[-1] else f"{values[0]}..{values[-1]}"


def run(model: Model, x: np.ndarray, options: argparse.Namespace) -> Result:
    from ..hdl.network import Network
    from ..hdl.schedule import resolve_lanes, schedule
    from ..plan import lanes_for

    x = check_input(model, x)
    if len(x) == 0:  # as the other targets: no samples in, no samples out
        return Result(np.zeros((0, model.output_dim), dtype=np.int64), {})
    backend = getattr(options, "backend", None) or "pysim"
    lanes, _ = lanes_for(model, options)  # --lanes, else the planner's (board, rate, clock from the options)
    vcd = getattr(options, "vcd", None)
    sched = schedule(model, lanes)
    figures: dict[str, object] = {"initiation interval (predicted)": sched.initiation_interval,
                                  "latency (predicted)": sched.latency,
                                  "lanes": ",".join(str(v) for v in resolve_lanes(model, lanes))}
    start = time.perf_counter()
    if backend == "pysim":
        from .pysim import measure_pipeline

        if len(x) > 2000:
            _log(f"rtl/pysim: {len(x):,} samples at ~1,000 cycles/s; --backend verilator is much faster")
        from ..outputs import output_file

        with output_file(vcd, "waveform trace") if vcd else contextlib.nullcontext() as trace:
            res = measure_pipeline(Network(model, lanes=lanes), x, vcd=str(trace) if vcd else None,
                                   progress=_log if len(x) >= 50 else None)
        y = res.output
        figures["initiation interval (simulated)"] = _span(res.intervals)
        figures["latency (simulated)"] = _span(res.latencies)
    elif backend == "verilator":
        if vcd:
            raise NnhdlError("--vcd needs --backend pysim (the Verilator harness does not trace)")
        from .verilator import VerilatorSim

        sim = VerilatorSim(model, lanes=lanes, log=_log)
        start = time.perf_counter()
        y = sim.run(x)
        figures["initiation interval (simulated)"] = _span([sim.figures.get("ii_min"), sim.figures.get("ii_max")])
        figures["latency (simulated)"] = _span([sim.figures.get("latency_min"), sim.figures.get("latency_max")])
    else:
        raise NnhdlError(f"unknown --backend {backend!r}; choose pysim or verilator")
    seconds = time.perf_counter() - start
    figures["samples/s"] = f"{len(x) / seconds:,.0f}" if seconds > 0 else "inf"
    if vcd:
        figures["trace"] = vcd
    return Result(y, figures)
