"""The Cortex-M7 build (arm-none-eabi-gcc -O3) run on QEMU's mps2-an500 against the golden model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from nnhdl.configs import random_model, random_spec
from nnhdl.reference import evaluate

from mcu.build import build_arm, run_qemu
from mcu.check import check, f32_close, make_test_input
from mcu.export import generate

pytestmark = pytest.mark.skipif(
    not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
    reason="needs Debian gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm (CI installs them)",
)


@pytest.mark.parametrize("style", ["unrolled", "cmsis"])
def test_mcu_reference_q412_on_cortex_m7(style, tmp_path):
    model = random_model("mcu", seed=11)
    rep = check(model, "q412", style=style, samples=4000, qemu_samples=4000, workdir=tmp_path,
                say=lambda s: None)
    assert rep.qemu_samples == 4000
    # a sanity range, not a performance assertion (benchmarks/mcu.py measures)
    assert 100 < rep.instructions < 100_000
    assert rep.model_flash > 0 and rep.model_ram > 0


def test_random_po2_extreme_model_on_cortex_m7(tmp_path):
    """64-bit SMLALD path, saturation, odd dims, on the real instruction set."""
    rng = np.random.default_rng(7)
    spec = random_spec(rng, max_layers=4, max_dim=7, max_dilation=7)
    model = random_model(spec, seed=3, extreme=True)
    x = make_test_input(model, 3000, seed=9)
    b = build_arm(generate(model, "q412"), tmp_path, x)
    q = run_qemu(b, "q412", model.output_dim)
    assert np.array_equal(q.output, evaluate(model, x))


@pytest.mark.parametrize("style", ["unrolled", "cmsis"])
def test_f32_on_cortex_m7(style, tmp_path):
    model = random_model("mcu", seed=12)
    x = (make_test_input(model, 2000, seed=1) / model.qformat.scale).astype(np.float32)
    b = build_arm(generate(model, "f32", style=style), tmp_path, x)
    q = run_qemu(b, "f32", model.output_dim)
    ok, err, share = f32_close(model, x, q.output)
    assert ok, (err, share)


def test_f32_unrolled_host_and_cortex_m7_bit_identical(tmp_path):
    """fmaf() is one correctly rounded fused multiply-add on both (VFMA on the M7,
    libm on the host), in the same order, so the two builds agree bit for bit."""
    from mcu.build import build_host, run_host

    model = random_model("fpga_po2", seed=13)
    x = (make_test_input(model, 1500, seed=2) / model.qformat.scale).astype(np.float32)
    r = generate(model, "f32")
    yh, _ = run_host(build_host(r, tmp_path / "host"), x)
    q = run_qemu(build_arm(r, tmp_path / "arm", x), "f32", model.output_dim)
    assert np.array_equal(yh.view(np.uint32), q.output.view(np.uint32))
