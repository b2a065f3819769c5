"""``python -m mcu.check``: prove the emitted C against the golden model, on the host and on a Cortex-M7.

Steps (each prints one line):

1. export the model (in memory) and compile it with the host gcc against
   the real CMSIS-DSP sources; run it over a test input; ``q412``: every
   integer must equal :func:`nnhdl.reference.evaluate`; ``f32``: within
   the float32 error bound derived by :func:`nnhdl.reference.evaluate_float_bound`
   and, for ``--style unrolled``, bit-identical to the IEEE emulation of its
   fixed ``fmaf`` order (:func:`mcu.mirror.emulate_unrolled_f32`); for
   ``--style cmsis``, call for call against the ``cmsisdsp`` Python mirror
   (:func:`mcu.mirror.check_trace`);
2. cross-compile for Cortex-M7 (``-O3``, hard float) and print the sizes;
3. run that build under QEMU (``mps2-an500``, semihosting,
   ``-icount shift=0``), check the same outputs and report instructions
   per inference.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from nnhdl.argtypes import ArgumentParser, int_range, output_dir, seed
from nnhdl.errors import NnhdlError, run_cli
from nnhdl.model import Model
from nnhdl.reference import FLOAT32_UNIT_ROUNDOFF, evaluate, evaluate_float_bound

from .arith import F32, Q412
from .export import generate
from .toolchain import cache_dir

__all__ = ["make_test_input", "check", "CheckReport", "f32_close", "main"]

def make_test_input(model: Model, n: int, seed: int = 0) -> np.ndarray:
    """Mantissas ``[n, input_dim]``: a waveshaper-like half (triangle + held
    embedding, DESIGN §5 levels) and a full-range random half that saturates."""
    fmt = model.qformat
    rng = np.random.default_rng(seed)
    half = n // 2
    t = np.arange(half)
    x = np.zeros((n, model.input_dim), dtype=np.int64)
    if half:
        freq = np.exp(rng.uniform(np.log(20.0), np.log(2000.0))) / model.sample_rate
        phase = (t * freq) % 1.0
        x[:half, 0] = fmt.quantize(1.2207 * (1 - 4 * np.abs(phase - 0.5)))
        for c in range(1, model.input_dim):
            level = rng.uniform(-1.2207, 1.2207, size=max(1, half // 500 + 1))
            x[:half, c] = fmt.quantize(np.repeat(level, 500)[:half])
    x[half:] = rng.integers(fmt.min_int, fmt.max_int + 1, size=(n - half, model.input_dim))
    return x


def f32_close(model: Model, x: np.ndarray, y: np.ndarray) -> tuple[bool, float, float]:
    """Is the float32 program's output ``y`` within the derived error bound of the float reference?

    The bound (:func:`nnhdl.reference.evaluate_float_bound`) follows from the
    computation itself -- each output's products, their magnitudes and the
    errors carried in from earlier layers -- so it holds for any summation
    order a compiler or library picks, and no tolerance is fitted to a machine.
    Returns (within bound, max |error|, worst share of the bound used).
    """
    ref, bound = evaluate_float_bound(model, np.asarray(x, np.float64), FLOAT32_UNIT_ROUNDOFF)
    err = np.abs(np.asarray(y, np.float64) - ref)
    if not err.size:
        return True, 0.0, 0.0
    share = float(np.max(err / np.maximum(bound, np.finfo(np.float64).tiny)))
    return bool(np.all(err <= bound)), float(err.max()), share


def _equal_to_emulation(model: Model, x: np.ndarray, y: np.ndarray, what: str) -> None:
    """The ``unrolled`` float program's operation order is fixed, so its floats are exact: compare bits."""
    from .mirror import emulate_unrolled_f32

    want = emulate_unrolled_f32(model, x)
    got = np.asarray(y, np.float32)
    bad = np.argwhere(got.view(np.uint32) != want.view(np.uint32))
    if len(bad):
        t, c = (int(v) for v in bad[0])
        raise NnhdlError(f"{what} differs from the IEEE float32 emulation of its own operation order in "
                         f"{len(bad)} of {want.size} values; first at sample {t}, channel {c}: "
                         f"got {float(got[t, c])!r}, expected {float(want[t, c])!r}")


def _first_mismatch(y: np.ndarray, ref: np.ndarray) -> str:
    bad = np.argwhere(y != ref)
    t, c = (int(v) for v in bad[0])
    return (f"{len(bad)} of {ref.size} values differ; first at sample {t}, channel {c}: "
            f"got {int(y[t, c])}, golden model {int(ref[t, c])}")


@dataclass
class CheckReport:
    arith: str
    style: str
    host_samples: int = 0
    host_max_error: float = 0.0
    mirror_calls: int = 0
    mirror_max_error: float = 0.0
    arm_text: int = 0
    arm_data: int = 0
    arm_bss: int = 0
    model_flash: int = 0
    model_ram: int = 0
    qemu_samples: int = 0
    instructions: float = 0.0
    lines: list[str] = field(default_factory=list)


class IntegerCheck:
    """The q412 promise: every integer equal to the golden model (:func:`nnhdl.reference.evaluate`)."""

    max_error = 0.0

    def inputs(self, model: Model, x: np.ndarray) -> np.ndarray:
        return x

    def traces(self, style: str, mirror: bool) -> bool:
        return False

    def compare(self, model: Model, x: np.ndarray, y: np.ndarray, build: tuple[str, str], style: str) -> str:
        """Raise unless ``y`` is right for ``x``; else say how it was right.  ``build``: (where, what)."""
        ref = evaluate(model, x)
        if not np.array_equal(y, ref):
            raise NnhdlError(f"{' '.join(build)} disagrees with the golden model: " + _first_mismatch(y, ref))
        return "every integer equal to the golden model"

    def host_note(self, y: np.ndarray) -> str:
        return f" ({y.size:,} values)"


class FloatCheck:
    """The f32 promise: within the derived float32 error bound of the float reference; the unrolled
    style also bit-identical to the IEEE emulation of its fmaf order."""

    max_error = 0.0  # of the last comparison

    def inputs(self, model: Model, x: np.ndarray) -> np.ndarray:
        return (x / float(model.qformat.scale)).astype(np.float32)

    def traces(self, style: str, mirror: bool) -> bool:
        """The cmsis style's call trace is compared with the cmsisdsp mirror."""
        return style == "cmsis" and mirror

    def compare(self, model: Model, x: np.ndarray, y: np.ndarray, build: tuple[str, str], style: str) -> str:
        ok, err, share = f32_close(model, x, y)
        self.max_error = err
        if not ok:
            raise NnhdlError(f"{build[0]} float32 {build[1]} is off the float reference by {err:.3g}, "
                             f"{share:.3g}x the derived float32 error bound")
        what = f"within the derived float32 error bound of the float reference (max |error| {err:.3g}, " \
               f"{share:.1%} of the bound)"
        if style == "unrolled":
            _equal_to_emulation(model, x, y, " ".join(build))
            what += "; bit-identical to the IEEE emulation of its fmaf order"
        return what

    def host_note(self, y: np.ndarray) -> str:
        return ""


#: How each arithmetic's promise is checked, by the arithmetic's name (mcu.arith).
CHECKS = {Q412.name: IntegerCheck, F32.name: FloatCheck}


def check(model: Model, arith: str = "q412", *, style: str = "unrolled", samples: int = 10000,
          qemu_samples: int = 2000, seed: int = 0, workdir: Path | None = None, host: bool = True,
          arm: bool = True, qemu: bool = True, mirror: bool = True, opaque_weights: bool = True,
          force_acc64: bool = False, block: int | None = None, say=print) -> CheckReport:
    """Run the whole check; raise NnhdlError on the first disagreement."""
    result = generate(model, arith, style=style, opaque_weights=opaque_weights, force_acc64=force_acc64,
                      block=block)
    promise = CHECKS[result.plan.arith]()
    if workdir is None:
        workdir = cache_dir() / "check" / f"{model.fingerprint()[:12]}-{arith}-{style}"
    workdir = Path(workdir)
    rep = CheckReport(arith, style)
    x = make_test_input(model, samples, seed)
    if host:
        from .build import build_host, run_host

        start = time.perf_counter()
        trace = promise.traces(style, mirror)
        prog = build_host(result, workdir / "host", trace=trace)
        xin = promise.inputs(model, x)
        y, tr = run_host(prog, xin, trace=trace)
        msg = promise.compare(model, xin, y, ("host", "build"), style) + promise.host_note(y)
        rep.host_max_error = promise.max_error
        if trace:
            from .mirror import check_trace

            n_mirror = min(samples, 2000)
            rep.mirror_calls, rep.mirror_max_error = check_trace(model, xin[:n_mirror], tr)
            calls_per = rep.mirror_calls // max(1, n_mirror)
            msg += (f"; call for call vs the cmsisdsp mirror: {rep.mirror_calls:,} calls "
                    f"({calls_per}/sample), max |diff| {rep.mirror_max_error:.3g}")
        rep.host_samples = samples
        rep.lines.append(f"host gcc: {samples:,} samples, {msg} ({time.perf_counter() - start:.1f} s)")
        say(rep.lines[-1])
    if arm:
        from .build import build_arm, run_qemu

        xin = promise.inputs(model, x[:qemu_samples])
        b = build_arm(result, workdir / "arm", xin)
        rep.arm_text, rep.arm_data, rep.arm_bss = b.text, b.data, b.bss
        rep.model_flash, rep.model_ram = b.model_text, b.model_ram
        rep.lines.append(f"arm-none-eabi-gcc -mcpu=cortex-m7 -O3: model {b.model_text:,} bytes flash "
                         f"(code + weights), {b.model_ram:,} bytes RAM; whole test firmware text {b.text:,} "
                         f"data {b.data:,} bss {b.bss:,}")
        say(rep.lines[-1])
        if qemu:
            start = time.perf_counter()
            q = run_qemu(b, arith, model.output_dim)
            what = promise.compare(model, xin, q.output, ("Cortex-M7", "build (QEMU)"), style)
            rep.qemu_samples, rep.instructions = qemu_samples, q.instructions_per_inference
            rep.lines.append(f"QEMU mps2-an500 (Cortex-M7): {qemu_samples:,} samples, {what}; "
                             f"{q.instructions_per_inference:,.0f} instructions per inference "
                             f"({time.perf_counter() - start:.1f} s)")
            say(rep.lines[-1])
    return rep


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model file (.npz)")
    p.add_argument("--arith", choices=("q412", "f32"), default="q412", help="arithmetic path (default q412)")
    p.add_argument("--style", choices=("unrolled", "cmsis"), default="unrolled", help="code style (default unrolled)")
    p.add_argument("--samples", type=int_range(1, 10_000_000), default=10000, help="host test samples (default 10000)")
    p.add_argument("--qemu-samples", type=int_range(1, 1_000_000), default=2000, help="samples run on the emulated Cortex-M7 (default 2000)")
    p.add_argument("--seed", type=seed, default=0, help="test input seed")
    p.add_argument("--build", type=output_dir, default=None, help="build folder (default: under ~/.cache/nnhdl/mcu/check)")
    p.add_argument("--no-arm", action="store_true", help="host check only (no cross-compile, no QEMU)")
    p.add_argument("--no-qemu", action="store_true", help="cross-compile but do not run QEMU")


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m mcu.check", description=__doc__.splitlines()[0].replace("``", ""))
    add_arguments(p)
    args = p.parse_args(argv)
    return run_cli("mcu.check", lambda: _check_cli(args))


def _check_cli(args: argparse.Namespace) -> int:
    if args.samples < 1 or args.qemu_samples < 1:
        raise NnhdlError("--samples and --qemu-samples must be positive")
    model = Model.load(args.model)
    print(f"mcu.check: {model.name or Path(args.model).stem}, {model.params:,} parameters, {args.arith}/"
          f"{args.style}", flush=True)
    check(model, args.arith, style=args.style, samples=args.samples,
          qemu_samples=min(args.qemu_samples, args.samples), seed=args.seed,
          workdir=Path(args.build) if args.build else None, arm=not args.no_arm,
          qemu=not (args.no_arm or args.no_qemu), say=lambda s: print("  " + s, flush=True))
    print("mcu.check: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
