"""Every loop order and accumulator choice the emitters print, built for the Cortex-M7 and run on QEMU.

The host check compiles the portable C of the load/store helpers; only the Cortex-M7 build uses
their LDM/LDRD/STRD/VLDM forms (immediate offsets, pinned registers), so each variant is proven
here against the golden model (q412) or the float32 bound (f32) on the real instruction set.
Networks with long dilations and wide rows put cache offsets beyond the instructions' immediates.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from nnhdl.configs import LayerSpec, NetworkSpec, random_model, random_spec
from nnhdl.reference import evaluate

from mcu.build import build_arm, run_qemu
from mcu.check import f32_close, make_test_input
from mcu.export import generate

pytestmark = pytest.mark.skipif(
    not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
    reason="needs Debian gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm (CI installs them)",
)

# odd widths, a 1-word row with a long dilation (LDR's 255-byte negative reach), a 3-word row
# (LDRD + LDR) and a cache far beyond LDRD's 1,020 bytes
FAR = NetworkSpec("far", 3, (LayerSpec(3, 70, 2, "qb", "relu"), LayerSpec(2, 90, 5, "qb", "none"),
                             LayerSpec(4, 40, 6, "po2", "relu"), LayerSpec(1, 1, 3, "qb", "none")), 48000)


def _models():
    rng = np.random.default_rng(31)
    yield "far", random_model(FAR, seed=1)
    yield "far-extreme", random_model(FAR, seed=2, extreme=True)
    yield "random", random_model(random_spec(rng, max_layers=4, max_dim=9, max_dilation=20), seed=3)


@pytest.mark.parametrize("opts", [{}, {"block": 0}, {"block": 1}, {"block": 3}, {"block": 8},
                                  {"force_acc64": True}, {"force_acc64": True, "block": 4}],
                         ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_q412_variants_on_cortex_m7(opts, tmp_path):
    for name, model in _models():
        x = make_test_input(model, 1200, seed=5)
        b = build_arm(generate(model, "q412", **opts), tmp_path / name, x)
        q = run_qemu(b, "q412", model.output_dim)
        assert np.array_equal(q.output, evaluate(model, x)), name


@pytest.mark.parametrize("block", [-1, 0, 5])
def test_f32_variants_on_cortex_m7(block, tmp_path):
    for name, model in _models():
        x = (make_test_input(model, 1200, seed=6) / model.qformat.scale).astype(np.float32)
        b = build_arm(generate(model, "f32", block=block), tmp_path / name, x)
        q = run_qemu(b, "f32", model.output_dim)
        ok, err, share = f32_close(model, x, q.output)
        assert ok, (name, err, share)
