"""``python -m nnhdl explore SPACE.toml --out DIR``: sweep a search space, tables and Pareto fronts in DIR.

The space file is read and checked before anything is created: a bad one
is one line naming the key and exit status 2, with no ``--out`` folder.
Finished points are cached in ``DIR/cache`` as they arrive, so running the
same command again skips them and an interrupted sweep resumes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ..argtypes import int_range, output_dir
from ..errors import NnhdlError

__all__ = ["add_arguments", "main", "run_sweep"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = __doc__.split("\n\n")[0].replace("``", "")
    p.epilog = ("Finished points are cached in OUT/cache: the same command again skips them, an interrupted sweep "
                "resumes. A Dask cluster: `dask scheduler` on HOST, `dask worker tcp://HOST:8786 --nworkers 1 "
                "--nthreads 1` on each machine, then --dask tcp://HOST:8786.")
    p.add_argument("space", help="search-space file (TOML; examples/explore/*.toml documents every key)")
    p.add_argument("--out", required=True, type=output_dir,
                   help="folder for results.csv/.json, timings.csv, the Pareto PNGs, report.md and the cache")
    engine = p.add_mutually_exclusive_group()
    engine.add_argument("--workers", type=int_range(1, 1024), default=None,
                        help="local worker processes (default: the CPU count); each trains one point at a time")
    engine.add_argument("--dask", metavar="ADDRESS", default=None,
                        help="run every point as a task on this Dask scheduler (tcp://HOST:8786) instead")
    p.add_argument("--pnr-front", type=int_range(0, 1000), default=0, metavar="N",
                   help="place and route (yosys + nextpnr) the N lowest-error points of each FPGA board and rate's "
                        "estimated Pareto front; their rows then hold nextpnr's counts and Fmax (default 0)")
    p.add_argument("--no-references", action="store_true",
                   help="do not score and cost the bundled models (fpga_qb, fpga_po2, mcu) for the pictures")


def main(args: argparse.Namespace) -> int:
    from .space import load_space

    from .runner import Engine

    space = load_space(args.space)  # before --out exists: a bad file leaves nothing behind
    engine = Engine(workers=args.workers or os.cpu_count() or 1, dask=args.dask)
    if args.dask:
        engine.connect()  # an unreachable scheduler, too
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        engine.close()
        raise NnhdlError(f"--out {out}: cannot create it ({e.strerror or e})") from None
    command = " ".join(["python -m nnhdl explore", args.space, "--out", str(args.out)]
                       + (["--pnr-front", str(args.pnr_front)] if args.pnr_front else []))
    run_sweep(space, out, engine, command, references=not args.no_references, pnr_front=args.pnr_front)
    return 0


def run_sweep(space, out: Path, engine, command: str = "", references: bool = True, pnr_front: int = 0) -> Any:
    """Propose, evaluate and report; returns the :class:`~.sweep.SweepResult`."""
    from .report import plot_fronts, write_report, write_tables
    from .strategies import propose
    from .sweep import Sweep

    say = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    started = time.perf_counter()
    sweep = Sweep(space, out, engine, say)
    say(f"explore: {space.path}: strategy {space.strategy}, {space.budget.steps} training steps per point, "
        f"on {engine.describe()}")
    with engine:
        result = propose(space, sweep)
        computed = engine.evaluations
        placed = sweep.place_and_route(result, pnr_front) if pnr_front else 0
    refs = sweep.references(result.rows) if references else []
    write_tables(out, result.rows, result.seconds, result.ga_history)
    pictures = plot_fronts(out, result.rows, refs)
    write_report(out, space, result.rows, refs, pictures, command)
    shutil.rmtree(sweep.work, ignore_errors=True)
    ok = sum(r["status"] == "ok" for r in result.rows)
    print(f"explore: {len(result.rows)} points ({ok} ok, {len(result.rows) - ok} infeasible or failed; "
          f"{computed} computed, {len(result.rows) - computed} from the cache"
          + (f"; {placed} placed and routed" if pnr_front else "")
          + f") in {time.perf_counter() - started:.1f} s -> {out}")
    return result
