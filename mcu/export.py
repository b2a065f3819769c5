"""``python -m mcu.export``: model file -> plain C99 for a Cortex-M7 (and a Daisy Patch project).

Everything is generated in memory and checked against the memory budget
first; files are then written to temporary names and renamed, so a refused
or failed export leaves no partial output.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from nnhdl.argtypes import ArgumentParser, byte_size, output_dir
from nnhdl.errors import NnhdlError, run_cli
from nnhdl.model import Model

from .build import measure_model
from .files import write_files
from .layout import ExportResult, generate
from .plan import DAISY_SEED_FLASH, DAISY_SEED_RAM, Footprint

__all__ = ["generate", "export", "write_files", "ExportResult", "main", "BOARDS"]

BOARDS = ("none", "daisy-patch")


def check_budget(fp: Footprint, ram_limit: int, flash_limit: int) -> None:
    if fp.ram_bytes > ram_limit:
        raise NnhdlError(f"model needs {fp.ram_bytes:,} bytes of RAM (activation caches); the limit is {ram_limit:,} "
                         "(--ram-limit): use smaller dilations/dims or raise the limit for a bigger target")
    if fp.flash > flash_limit:
        how = ("measured with arm-none-eabi-gcc -O3" if fp.measured_flash is not None else
               f"{fp.flash_data:,} weights + ~{fp.code_estimate:,} code, estimated")
        raise NnhdlError(f"model needs {fp.flash:,} bytes of flash ({how}); the limit is {flash_limit:,} "
                         "(--flash-limit): use a smaller model or raise the limit")


def measure(result: ExportResult, prefix: str, flash_limit: int) -> None:
    """Replace the estimate by the real Cortex-M7 sizes when the cross compiler is installed.

    Skipped when the estimate is already far over the limit (refused anyway,
    and compiling huge straight-line code would only waste time)."""
    if result.footprint.flash > 2 * flash_limit:
        return
    sizes = measure_model(result, prefix)
    if sizes is not None:
        result.footprint = replace(result.footprint, measured_flash=sizes[0], measured_ram=sizes[1])


def export(model: Model, out_dir: str | os.PathLike, arith: str = "q412", *, prefix: str = "nnhdl",
           style: str = "unrolled", ram_limit: int = DAISY_SEED_RAM, flash_limit: int = DAISY_SEED_FLASH,
           board: str = "none", measure_size: bool = True) -> ExportResult:
    """Generate, check the budget, write. Raises NnhdlError before writing anything on bad input."""
    result = generate(model, arith, prefix=prefix, style=style)
    if result.footprint.ram_bytes > ram_limit:  # refused before compiling anything
        check_budget(result.footprint, ram_limit, flash_limit)
    if measure_size:
        measure(result, prefix, flash_limit)
    check_budget(result.footprint, ram_limit, flash_limit)
    files = dict(result.files)
    if board == "daisy-patch":
        from .daisy import daisy_patch_project

        files = daisy_patch_project(model, files, arith, prefix)
    elif board != "none":
        raise NnhdlError(f"--board must be one of {', '.join(BOARDS)}, got {board!r}")
    write_files(Path(out_dir), files)
    result.files = files
    return result


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model file (.npz, nnhdl-model v1)")
    p.add_argument("--out", required=True, type=output_dir, help="output folder (created if missing; files replaced atomically)")
    p.add_argument("--arith", choices=("q412", "f32"), default="q412",
                   help="q412: bit-exact integers (SMLAD); f32: float32 in model units (default q412)")
    p.add_argument("--prefix", default="nnhdl", help="C identifier prefix (default nnhdl)")
    p.add_argument("--style", choices=("unrolled", "cmsis"), default="unrolled",
                   help="unrolled: specialised straight-line code (fast); cmsis: one CMSIS-DSP call per "
                   "output/layer (default unrolled)")
    p.add_argument("--board", choices=BOARDS, default="none",
                   help="also write a firmware project (daisy-patch: libDaisy main.cpp, Makefile, README)")
    p.add_argument("--ram-limit", type=byte_size(), default=DAISY_SEED_RAM,
                   help=f"refuse models needing more RAM (default {DAISY_SEED_RAM // 1024}k, Daisy Seed AXI SRAM)")
    p.add_argument("--flash-limit", type=byte_size(), default=DAISY_SEED_FLASH,
                   help=f"refuse models needing more flash (default {DAISY_SEED_FLASH // 1024}k, Daisy Seed)")


def _export_cli(args: argparse.Namespace) -> int:
    model = Model.load(args.model)
    result = export(model, args.out, args.arith, prefix=args.prefix, style=args.style, ram_limit=args.ram_limit,
                    flash_limit=args.flash_limit, board=args.board)
    fp = result.footprint
    print(f"wrote {len(result.files)} files to {args.out}: {', '.join(sorted(result.files))}")
    print(f"  model {model.name or Path(args.model).stem}: {model.params:,} parameters, "
          f"{model.macs_per_sample:,} MACs/sample, arithmetic {args.arith}, style {args.style}")
    acc = ", ".join(f"L{lp.index}:{'32' if lp.acc32 else '64'}" for lp in result.plan.layers) \
        if args.arith == "q412" else "float32"
    print(f"  accumulators: {acc}")
    if args.board == "daisy-patch" and model.sample_rate != 48000:
        print(f"  note: the model was made for {model.sample_rate} Hz; the Daisy Patch firmware runs at 48000 Hz")
    if fp.measured_flash is not None:
        print(f"  flash: {fp.flash:,} bytes (code + weights, arm-none-eabi-gcc -O3 Cortex-M7) of {args.flash_limit:,}")
        print(f"  RAM:   {fp.ram_bytes:,} bytes (activation caches, .data + .bss) of {args.ram_limit:,}")
    else:
        print(f"  flash: ~{fp.flash:,} bytes ({fp.flash_data:,} of weights + ~{fp.code_estimate:,} of code, estimated: "
              f"install gcc-arm-none-eabi to measure) of {args.flash_limit:,}")
        print(f"  RAM:   {fp.ram:,} bytes of activation caches of {args.ram_limit:,}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m mcu.export", description=__doc__.splitlines()[0].replace("``", ""))
    add_arguments(p)
    args = p.parse_args(argv)
    return run_cli("mcu.export", lambda: _export_cli(args))


if __name__ == "__main__":
    sys.exit(main())
