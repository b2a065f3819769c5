"""MCU back end figures: instructions per inference on the emulated Cortex-M7, flash and RAM.

    PYTHONPATH=. python benchmarks/mcu.py [--models mcu,fpga_qb] [--weights trained,random] [--seed 0]
                                          [--variants all|default] [--no-budget]

Rows come first for the bundled trained models (``nnhdl/models/*.npz``, what a
user runs), then for random weights of the same shapes (``--seed``): trained
weights can need wider accumulators in places, so the two differ.  Last, for
each arithmetic's default code, the widest network of the ``mcu`` family (the
``mcu`` layer list with every hidden width scaled) whose instructions per
inference fit half the Daisy's 48 kHz budget (5,000 of 10,000 cycles at 480 MHz;
instructions stand in for cycles).
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
from nnhdl.configs import REFERENCE, LayerSpec, NetworkSpec, random_model  # noqa: E402
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
#: half the Daisy's 48 kHz budget: 10,000 cycles per sample at 480 MHz, counted as instructions
BUDGET = 5_000


def mcu_family(width: int) -> NetworkSpec:
    """The ``mcu`` layer list with hidden widths ``width`` (the 8-wide layers ``2 * width``)."""
    base = REFERENCE["mcu"]
    layers = tuple(LayerSpec(l.kernel_size, l.dilation, l.out_dim if i + 1 == len(base.layers) else width * l.out_dim // 4,
                             l.kind, l.activation, l.relu_max) for i, l in enumerate(base.layers))
    return NetworkSpec(f"mcu_w{width}", base.input_dim, layers, base.sample_rate, base.qformat, base.rounding)


def largest_in_budget(arith: str, seed: int, samples: int, work: Path) -> tuple[int, int, float]:
    """(width, MACs per sample, instructions) of the widest family member within BUDGET (random weights)."""
    cost: dict[int, tuple[int, float]] = {}

    def measure(width: int) -> float:
        if width not in cost:
            model = random_model(mcu_family(width), seed=seed)
            rep = check(model, arith, samples=samples, qemu_samples=samples, workdir=work / f"{arith}-w{width}",
                        say=lambda s: None)
            cost[width] = (model.macs_per_sample, rep.instructions)
        return cost[width][1]

    lo, hi = 4, 8  # lo fits (the mcu model itself); grow hi until it does not
    if measure(lo) > BUDGET:
        raise RuntimeError(f"even width {lo} costs {measure(lo):,.0f} instructions")
    while measure(hi) <= BUDGET:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if measure(mid) <= BUDGET else (lo, mid)
    return lo, cost[lo][0], cost[lo][1]


def _model(name: str, weights: str, seed: int) -> Model:
    return Model.load(MODELS / f"{name}.npz") if weights == "trained" else random_model(name, seed=seed)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mcu,fpga_qb,fpga_po2", help="reference configurations (comma separated)")
    p.add_argument("--weights", default="trained,random",
                   help="trained (the bundled model files) and/or random (seeded) weights, comma separated")
    p.add_argument("--seed", type=int, default=0, help="random weights seed")
    p.add_argument("--samples", type=int, default=2000, help="samples checked per variant (host and QEMU)")
    p.add_argument("--variants", choices=("all", "default"), default="all",
                   help="every code variant, or each arithmetic's default only")
    p.add_argument("--no-budget", action="store_true", help="skip the largest-network-in-budget search")
    args = p.parse_args()
    variants = VARIANTS if args.variants == "all" else [v for v in VARIANTS if "(default" in v[0]]
    rows = Rows()
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        for weights in args.weights.split(","):
            for name in args.models.split(","):
                model = rows.run(f"{name} ({weights} weights)", lambda: _model(name, weights, args.seed),
                                 lambda m: f"{m.params:,} parameters, {m.macs_per_sample:,} MACs per sample")
                if model is None:
                    continue
                for label, arith, style, opts in variants:
                    start = time.perf_counter()
                    work = Path(tmp) / f"{weights}-{name}-{rows.done + len(rows.failed)}"
                    rows.run(f"{name:9s} {weights:7s} {label:52s}",
                             lambda: check(model, arith, style=style, samples=args.samples,
                                           qemu_samples=args.samples, workdir=work, say=lambda s: None, **opts),
                             lambda rep: (f"{rep.instructions:8,.0f} instr/inference  flash {rep.model_flash:7,d} B  "
                                          f"RAM {rep.model_ram:6,d} B  (checked {args.samples} samples, "
                                          f"{time.perf_counter() - start:.1f} s)"))
        if not args.no_budget:
            print(f"\nlargest mcu-family network (hidden widths w, 8-wide layers 2w; random weights) within "
                  f"{BUDGET:,} instructions per inference, half the 48 kHz budget:")
            for arith in ("q412", "f32"):
                rows.run(f"  {arith} unrolled", lambda: largest_in_budget(arith, args.seed, args.samples, Path(tmp)),
                         lambda r: f"width {r[0]}: {r[1]:,} MACs per sample, {r[2]:,.0f} instr/inference")
    print("\nbudget at 48 kHz on a 480 MHz Cortex-M7: 10,000 cycles; original Daisy firmware (mcu, f32 CMSIS): ~6,170")
    return rows.exit_status()


if __name__ == "__main__":
    sys.exit(main())
