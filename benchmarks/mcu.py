"""MCU back end figures: instructions per inference on the emulated Cortex-M7, flash and RAM.

    PYTHONPATH=. python benchmarks/mcu.py [--models mcu,fpga_qb] [--weights trained,random] [--seed 0]

Rows come first for the bundled trained models (``nnhdl/models/*.npz``, what a
user runs), then for random weights of the same shapes (``--seed``): trained
weights can need wider accumulators in places, so the two differ.
Every row is a full ``mcu.check`` run (host bit-exact/tolerance check, then the
arm-none-eabi-gcc -O3 Cortex-M7 build on QEMU mps2-an500 with
``-icount shift=0``), so a figure is only printed for code that is proven
correct.  Instructions are counted by SysTick differencing over 100 and 1100
inferences (one tick = 40 instructions); they include the call and the
benchmark loop (~6 instructions).  Flash/RAM are the model object's
``arm-none-eabi-size`` (code + weights, .data + .bss).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.rows import Rows  # noqa: E402
from nnhdl.configs import random_model  # noqa: E402
from nnhdl.model import Model  # noqa: E402

from mcu.check import check  # noqa: E402
from mcu.toolchain import cache_dir  # noqa: E402

VARIANTS = [
    # (label, arith, style, options)
    ("q412 unrolled (default: auto blocks)", "q412", "unrolled", {}),
    ("q412 unrolled, taps in registers, 1 output at a time", "q412", "unrolled", {"block": 0}),
    ("q412 unrolled, 4-output blocks", "q412", "unrolled", {"block": 4}),
    ("q412 unrolled, 8-output blocks", "q412", "unrolled", {"block": 8}),
    ("q412 unrolled, weights folded to MOVW/MOVT", "q412", "unrolled", {"opaque_weights": False}),
    ("q412 unrolled, 64-bit SMLALD everywhere", "q412", "unrolled", {"force_acc64": True}),
    ("q412 unrolled, 64-bit SMLALD, 4-output blocks", "q412", "unrolled", {"force_acc64": True, "block": 4}),
    ("q412 cmsis (arm_dot_prod_q15 per output)", "q412", "cmsis", {}),
    ("f32 unrolled (default: auto blocks)", "f32", "unrolled", {}),
    ("f32 unrolled, taps in registers, 1 output at a time", "f32", "unrolled", {"block": 0}),
    ("f32 cmsis (arm_mat_mult/add/clip per layer)", "f32", "cmsis", {}),
]


MODELS = Path(__file__).resolve().parents[1] / "nnhdl" / "models"


def _model(name: str, weights: str, seed: int) -> Model:
    return Model.load(MODELS / f"{name}.npz") if weights == "trained" else random_model(name, seed=seed)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mcu,fpga_qb,fpga_po2", help="reference configurations (comma separated)")
    p.add_argument("--weights", default="trained,random",
                   help="trained (the bundled model files) and/or random (seeded) weights, comma separated")
    p.add_argument("--seed", type=int, default=0, help="random weights seed")
    p.add_argument("--samples", type=int, default=2000, help="samples checked per variant (host and QEMU)")
    args = p.parse_args()
    rows = Rows()
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        for weights in args.weights.split(","):
            for name in args.models.split(","):
                model = rows.run(f"{name} ({weights} weights)", lambda: _model(name, weights, args.seed),
                                 lambda m: f"{m.params:,} parameters, {m.macs_per_sample:,} MACs per sample")
                if model is None:
                    continue
                for label, arith, style, opts in VARIANTS:
                    start = time.perf_counter()
                    work = Path(tmp) / f"{weights}-{name}-{rows.done + len(rows.failed)}"
                    rows.run(f"{name:9s} {weights:7s} {label:52s}",
                             lambda: check(model, arith, style=style, samples=args.samples,
                                           qemu_samples=args.samples, workdir=work, say=lambda s: None, **opts),
                             lambda rep: (f"{rep.instructions:8,.0f} instr/inference  flash {rep.model_flash:7,d} B  "
                                          f"RAM {rep.model_ram:6,d} B  (checked {args.samples} samples, "
                                          f"{time.perf_counter() - start:.1f} s)"))
    print("\nbudget at 48 kHz on a 480 MHz Cortex-M7: 10,000 cycles; original Daisy firmware (mcu, f32 CMSIS): ~6,170")
    return rows.exit_status()


if __name__ == "__main__":
    sys.exit(main())
