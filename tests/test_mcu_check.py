"""``python -m mcu.check`` end to end, missing tools, and a property test over random models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from nnhdl.configs import random_model, random_spec
from nnhdl.errors import NnhdlError
from nnhdl.fixedpoint import QFormat
from nnhdl.reference import evaluate

from mcu.build import build_host, run_host
from mcu.check import make_test_input
from mcu.export import generate
from mcu.toolchain import require

ROOT = Path(__file__).resolve().parents[1]


def test_check_cli_end_to_end(tmp_path):
    model = tmp_path / "mcu.npz"
    random_model("mcu", seed=41).save(model)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "mcu.check", "--model", str(model), "--samples", "3000",
                        "--qemu-samples", "1000", "--build", str(tmp_path / "b")],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert "every integer equal" in p.stdout and "instructions per inference" in p.stdout
    assert "mcu.check: OK" in p.stdout


def test_missing_tool_names_the_debian_package(monkeypatch, tmp_path):
    with pytest.raises(NnhdlError, match="qemu-system-arm"):
        monkeypatch.setenv("PATH", str(tmp_path))
        require("qemu-system-arm")
    with pytest.raises(NnhdlError, match="gcc-arm-none-eabi"):
        require("arm-none-eabi-gcc")


def test_check_cli_reports_missing_qemu(tmp_path):
    model = tmp_path / "m.npz"
    random_model("mcu", seed=42).save(model)
    # a PATH with gcc and the arm toolchain but no QEMU
    bindir = tmp_path / "bin"
    bindir.mkdir()
    import shutil

    for tool in ("gcc", "ar", "arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-ar", "as", "ld"):
        found = shutil.which(tool)
        if found:
            os.symlink(found, bindir / tool)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PATH=str(bindir))
    p = subprocess.run([sys.executable, "-m", "mcu.check", "--model", str(model), "--samples", "500",
                        "--build", str(tmp_path / "b")], capture_output=True, text=True, env=env)
    assert p.returncode == 2
    assert "qemu-system-arm" in p.stderr and "apt-get install" in p.stderr


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), width=st.integers(4, 16), extreme=st.booleans())
def test_random_models_any_width_bit_exact(tmp_path, seed, width, extreme):
    rng = np.random.default_rng(seed)
    fmt = QFormat(width, int(rng.integers(0, width)))
    spec = random_spec(rng, max_layers=3, max_dim=6, max_dilation=5, qformat=fmt)
    model = random_model(spec, seed=seed % 1000, extreme=extreme)
    x = make_test_input(model, 1500, seed=seed % 7)
    y, _ = run_host(build_host(generate(model, "q412"), tmp_path / f"h{seed}"), x)
    assert np.array_equal(y, evaluate(model, x))
