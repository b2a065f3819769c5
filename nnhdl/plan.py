"""``python -m nnhdl plan``: the folding planner from the command line, and the shared
``--board/--sample-rate/--clock-mhz/--lanes`` handling of every command that builds hardware."""

from __future__ import annotations

import argparse
import json

from .argtypes import finite_float, int_range
from .errors import NnhdlError
from .limits import MAX_SAMPLE_RATE
from .model import Model, write_atomically

__all__ = ["add_plan_arguments", "lanes_for", "add_arguments", "main"]


def add_plan_arguments(p: argparse.ArgumentParser, *, lanes: bool = True) -> None:
    """The planner's knobs; ``--lanes`` (when offered) overrides the plan."""
    from .hdl.planner import PARTS

    p.add_argument("--board", default="ecpix5", choices=sorted(PARTS), help="the part to plan for (default ecpix5)")
    p.add_argument("--sample-rate", type=int_range(1, MAX_SAMPLE_RATE), default=None, help="samples per second (default: the model's)")
    p.add_argument("--clock-mhz", type=finite_float(0.0, 10000.0, lo_open=True), default=None,
                   help="network clock (default: one the part closes timing at, 125 MHz on the ECPIX-5)")
    if lanes:
        p.add_argument("--lanes", default=None, help="multipliers per layer, N or N,N,... (default: the planner's)")


def lanes_for(model: Model, args: argparse.Namespace, *, banks: int = 1) -> tuple[list[int], object | None]:
    """``--lanes`` if given, else the plan for ``args``' board, rate and clock: ``(lanes, plan or None)``."""
    from .hdl.planner import plan
    from .hdl.schedule import parse_lanes, resolve_lanes

    given = parse_lanes(getattr(args, "lanes", None))
    if given is not None:
        return resolve_lanes(model, given), None
    p = plan(model, getattr(args, "board", None) or "ecpix5", sample_rate=getattr(args, "sample_rate", None),
             clock_mhz=getattr(args, "clock_mhz", None), banks=banks)
    return p.lanes, p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model file (.npz)")
    add_plan_arguments(p, lanes=False)
    p.add_argument("--banks", type=int, default=1, choices=[1, 2],
                   help="weight banks to plan block RAM for (2 = reload while running, as the board build)")
    p.add_argument("--json", default=None, help="also write the plan to this JSON file")
    p.add_argument("--latency-in-period", action="store_true",
                   help="the whole latency, not only the initiation interval, must fit one sample period "
                        "(the board's frame f -> f+2 timing; more multipliers)")


def main(args: argparse.Namespace) -> int:
    from .hdl.planner import plan

    model = Model.load(args.model)
    if args.sample_rate is not None and args.sample_rate <= 0:
        raise NnhdlError(f"--sample-rate must be positive, got {args.sample_rate}")
    p = plan(model, args.board, sample_rate=args.sample_rate, clock_mhz=args.clock_mhz, banks=args.banks,
                         latency_in_period=args.latency_in_period)
    print(p.report())
    if args.json:
        text = json.dumps(p.to_json(), indent=1)
        write_atomically(args.json, lambda f: f.write(text + "\n"), mode="w")
    return 0
