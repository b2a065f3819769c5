"""Design-space exploration throughput: points per hour with the process pool and with Dask, same space.

    PYTHONPATH=. python benchmarks/explore.py [--space tests/fixtures/explore_tiny.toml] [--workers 1]
                                              [--pnr-front 1] [--no-dask] [--out runs/bench-explore]

Each engine sweeps the space from an empty cache into its own folder under
``--out`` (not /tmp: YoWASP cannot see it); a Dask ``LocalCluster`` with the
same number of single-threaded worker processes stands in for a cluster (its
start-up is timed apart).  Printed per engine: wall time of the sweep, points
per hour (trained points / wall time; P&R time included when --pnr-front is
given), and the share of the workers' time in training, scoring, planning,
the MCU build + QEMU and place and route (``timings.csv``).  The two result
tables are compared: they must be identical.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nnhdl.cli import main as nnhdl_main  # noqa: E402
from nnhdl.explore.report import TIMING_PHASES  # noqa: E402


def sweep(space: str, out: Path, engine: list[str], pnr_front: int) -> tuple[float, int, dict[str, float]]:
    """Run one sweep from scratch; (wall seconds, points, seconds per phase summed over points)."""
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    argv = ["explore", space, "--out", str(out), "--no-references", *engine]
    if pnr_front:
        argv += ["--pnr-front", str(pnr_front)]
    if nnhdl_main(argv) != 0:
        raise SystemExit(f"explore failed: {' '.join(argv)}")
    wall = time.perf_counter() - t
    phases = dict.fromkeys(TIMING_PHASES, 0.0)
    with open(out / "timings.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for p in TIMING_PHASES:
            phases[p] += float(r[p])
    return wall, len(rows), phases


def show(name: str, wall: float, points: int, phases: dict[str, float]) -> None:
    busy = sum(phases.values()) or 1.0
    share = ", ".join(f"{p} {100 * v / busy:.0f}%" for p, v in phases.items())
    print(f"{name:<28} {points} points in {wall:6.1f} s = {3600 * points / wall:6.0f} points/hour; "
          f"worker time {busy:.1f} s: {share}", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="tests/fixtures/explore_tiny.toml")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--pnr-front", type=int, default=1, help="front points placed and routed per board (default 1)")
    p.add_argument("--no-dask", action="store_true")
    p.add_argument("--out", default="runs/bench-explore")
    args = p.parse_args()
    out = Path(args.out)
    results = {}
    wall, n, phases = sweep(args.space, out / "pool", ["--workers", str(args.workers)], args.pnr_front)
    show(f"process pool ({args.workers} worker{'s' if args.workers > 1 else ''})", wall, n, phases)
    results["pool"] = (out / "pool" / "results.csv").read_text()
    if not args.no_dask:
        from dask.distributed import LocalCluster

        t = time.perf_counter()
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster:
            start = time.perf_counter() - t
            wall, n, phases = sweep(args.space, out / "dask", ["--dask", cluster.scheduler_address],
                                    args.pnr_front)
        show(f"Dask LocalCluster ({args.workers} worker{'s' if args.workers > 1 else ''})", wall, n, phases)
        print(f"  (cluster start-up {start:.1f} s, not included)")
        results["dask"] = (out / "dask" / "results.csv").read_text()
        print("result tables identical" if results["dask"] == results["pool"] else "RESULT TABLES DIFFER")
    return 0


if __name__ == "__main__":
    sys.exit(main())
