"""``python -m nnhdl``: inspect, create and run models.

Every :class:`~nnhdl.errors.NnhdlError` becomes one line on stderr and exit
status 2; no traceback and no output file are left behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from .argtypes import ArgumentParser, finite_float, seed
from .errors import run_cli

# Subcommands other packages contribute: name -> (module, help).  Each module
# provides ``add_arguments(parser)`` and ``main(args) -> int``.
EXTRA_COMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("nnhdl.plan", "choose per-layer lanes meeting a sample rate on a board with the fewest multipliers"),
    "synth": ("nnhdl.synth", "synthesise the network for the ECP5 (yosys; --pnr: nextpnr) and print cell counts"),
    "explore": ("nnhdl.explore.cli", "sweep model and hardware knobs: train, score and cost each point, Pareto fronts"),
}


def _table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    from .model import Model

    model = Model.load(args.model)
    rows = []
    for n, l in enumerate(model.layers):
        act = l.activation if l.relu_max is None else f"relu<={l.relu_max}"
        rows.append([n, l.kind, l.kernel_size, l.dilation, f"{l.in_dim}->{l.out_dim}", act, l.params, l.macs,
                     l.cache_length if l.kernel_size > 1 else "-", l.accumulator_width(model.qformat)])
    name = model.name or Path(args.model).stem
    print(f"model {name}: {model.qformat}, rounding {model.rounding}, {model.input_dim} in -> "
          f"{model.output_dim} out, {model.sample_rate} Hz")
    print(_table(rows, ["layer", "kind", "K", "dil", "dims", "act", "params", "MACs", "cache", "acc bits"]))
    print(f"parameters        {model.params:,}")
    print(f"MACs per sample   {model.macs_per_sample:,}")
    print(f"receptive field   {model.receptive_field} samples = {model.receptive_field_ms:.3f} ms at "
          f"{model.sample_rate} Hz")
    print(f"fingerprint       {model.fingerprint()[:16]}")
    for key in ("trained_by", "notes"):
        if model.meta.get(key):
            print(f"{key:<17} {model.meta[key]}")
    if getattr(args, "hw", False):
        from .hdl.planner import PARTS
        from .hdl.schedule import hw_report
        from .plan import lanes_for

        lanes, plan = lanes_for(model, args)
        clock = args.clock_mhz or PARTS[args.board].default_clock_mhz
        print()
        print(hw_report(model, lanes, clock, sample_rate=args.sample_rate))
        print(f"lanes {','.join(map(str, lanes))}: "
              + ("given by --lanes" if plan is None else f"planned for {plan.part.name} (`plan` explains)"))
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from .configs import random_model
    from .outputs import check_output_path

    check_output_path(args.out, "model file")
    model = random_model(args.config, seed=args.seed, extreme=args.extreme)
    model.save(args.out)
    print(f"wrote {args.out}: {model.name}, {model.params:,} parameters, random weights (seed {args.seed})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .audio_io import read_samples, write_samples
    from .model import Model
    from .outputs import check_output_path
    from .targets import run_target

    check_output_path(args.output, "output samples")
    if args.vcd:
        check_output_path(args.vcd, "waveform trace")
    model = Model.load(args.model)
    x, rate = read_samples(args.input, model.qformat, channels=model.input_dim)
    if rate is not None and rate != model.sample_rate:
        print(f"note: {args.input} is at {rate} Hz, the model at {model.sample_rate} Hz; samples are used as they are",
              file=sys.stderr)
    result = run_target(args.target, model, x, args)
    write_samples(args.output, result.output, rate or model.sample_rate)
    print(f"{args.target}: {len(x):,} samples -> {args.output}")
    for k, v in result.figures.items():
        print(f"  {k}: {v}")
    return 0


_OTHER = [
    ("python -m boards.pmod build [--flash]", "bitstream for the eurorack-pmod (ECPIX-5, Colorlight i5)"),
    ("python -m mcu.export | mcu.check", "C for CMSIS-DSP (Daisy, Cortex-M7), proven on host and QEMU"),
    ("python -m training.train | training.evaluate", "quantisation-aware training, reports with pictures"),
    ("python -m training.import_qkeras", "models trained with qkeras"),
]
_OTHER_COMMANDS = "The other back ends have their own commands:\n" + "\n".join(
    f"  {cmd:<46}{what}" for cmd, what in _OTHER
)


def build_parser() -> argparse.ArgumentParser:
    from .targets import TARGETS

    p = ArgumentParser(
        prog="python -m nnhdl",
        description="Tiny quantised WaveNet-style networks, one inference per audio sample, "
        "bit-exact from numpy to FPGA to microcontroller.",
        epilog=_OTHER_COMMANDS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("info", help="describe a model file: layers, parameters, MACs, receptive field")
    s.add_argument("model", help="model file (.npz, nnhdl-model v1)")
    s.add_argument("--hw", action="store_true", help="also print the FPGA schedule: cycles per sample and resources")
    from .plan import add_plan_arguments

    add_plan_arguments(s)
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("init", help="write a model with random weights for a configuration")
    s.add_argument("--config", default="fpga_qb", help="fpga_qb, fpga_po2, mcu or a layer-list JSON (default fpga_qb)")
    s.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    s.add_argument("--extreme", action="store_true", help="full-range weights that saturate (hardware stress tests)")
    s.add_argument("--out", required=True, help="model file to write (.npz)")
    s.set_defaults(func=cmd_init)

    s = sub.add_parser("run", help="run a model on samples (.npy mantissas or .wav pmod counts)")
    s.add_argument("--model", required=True, help="model file (.npz)")
    s.add_argument("--input", required=True, help="input .npy [samples, channels] int mantissas, or .wav")
    s.add_argument("--output", required=True, help="output .npy or .wav")
    s.add_argument("--target", default="reference", choices=sorted(TARGETS),
                   help="what computes the samples (default: the reference golden model)")
    s.add_argument("--backend", choices=["pysim", "verilator"], default="pysim",
                   help="simulator for --target rtl (default pysim; verilator for long audio)")
    add_plan_arguments(s)
    s.add_argument("--vcd", default=None, help="--target rtl --backend pysim: write a waveform trace here")
    s.set_defaults(func=cmd_run)

    for name, (module, help_text) in EXTRA_COMMANDS.items():
        import importlib

        mod = importlib.import_module(module)
        s = sub.add_parser(name, help=help_text)
        mod.add_arguments(s)
        s.set_defaults(func=mod.main)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return run_cli("nnhdl", lambda: func(args))
