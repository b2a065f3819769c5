"""``python -m mcu.export``: the files, the footprint figures and the refusals (no partial output)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnhdl.configs import NetworkSpec, LayerSpec, random_model
from nnhdl.errors import NnhdlError
from nnhdl.fixedpoint import QFormat

from mcu.export import export, main

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "mcu.export", *args], capture_output=True, text=True, cwd=cwd, env=env)


@pytest.fixture
def mcu_model(tmp_path) -> Path:
    path = tmp_path / "mcu.npz"
    random_model("mcu", seed=1).save(path)
    return path


def test_cli_writes_header_and_source(mcu_model, tmp_path):
    out = tmp_path / "out"
    p = _cli("--model", str(mcu_model), "--out", str(out), "--arith", "q412", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(out)) == ["nnhdl_model.c", "nnhdl_model.h"]
    h = (out / "nnhdl_model.h").read_text()
    for text in ("#define NNHDL_INPUT_DIM 3", "#define NNHDL_OUTPUT_DIM 1", "#define NNHDL_SAMPLE_RATE 48000",
                 "void nnhdl_reset(void);", "void nnhdl_step(const int16_t *in, int16_t *out);"):
        assert text in h
    assert "flash:" in p.stdout and "RAM:" in p.stdout


def test_cli_f32_and_prefix(mcu_model, tmp_path):
    out = tmp_path / "f"
    p = _cli("--model", str(mcu_model), "--out", str(out), "--arith", "f32", "--prefix", "shaper", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    h = (out / "shaper_model.h").read_text()
    assert "void shaper_step_f32(const float *in, float *out);" in h
    assert "#define SHAPER_INPUT_DIM 3" in h


def test_too_big_for_ram_is_refused_without_output(mcu_model, tmp_path):
    out = tmp_path / "big"
    p = _cli("--model", str(mcu_model), "--out", str(out), "--ram-limit", "1k", cwd=tmp_path)
    assert p.returncode == 2
    assert "RAM" in p.stderr and "--ram-limit" in p.stderr and "Traceback" not in p.stderr
    assert not out.exists()


def test_too_big_for_flash_is_refused(tmp_path):
    spec = NetworkSpec("wide", 16, (LayerSpec(8, 1, 64, "qb", "relu"), LayerSpec(8, 2, 64, "qb", "relu"),
                                    LayerSpec(8, 4, 64, "qb", "none")), 48000)
    model = random_model(spec, seed=0)
    out = tmp_path / "o"
    with pytest.raises(NnhdlError, match="flash"):
        export(model, out, "q412")
    assert not out.exists()


def test_width_over_16_refused_for_q412(tmp_path):
    spec = NetworkSpec("w20", 2, (LayerSpec(2, 1, 2, "qb", "relu"),), 48000, QFormat(20, 12))
    model = random_model(spec, seed=0)
    path = tmp_path / "w20.npz"
    model.save(path)
    out = tmp_path / "o"
    p = _cli("--model", str(path), "--out", str(out), cwd=tmp_path)
    assert p.returncode == 2 and "16" in p.stderr and "--arith f32" in p.stderr
    assert not out.exists()
    # the float path accepts it
    export(model, out, "f32")
    assert (out / "nnhdl_model.c").exists()


def test_unwritable_output_leaves_nothing(mcu_model, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    p = _cli("--model", str(mcu_model), "--out", str(blocker / "sub"), cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    p = _cli("--model", str(mcu_model), "--out", str(blocker), cwd=tmp_path)
    assert p.returncode == 2 and "not a folder" in p.stderr
    assert blocker.read_text() == "not a folder"


def test_write_failure_midway_leaves_no_partial_files(mcu_model, tmp_path, monkeypatch):
    """A write that fails after some files are done: no file appears, the new folder is removed."""
    import mcu.export as ex

    real = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(ex.os, "replace", failing_replace)
    out = tmp_path / "partial"
    with pytest.raises(NnhdlError, match="cannot write"):
        export(random_model("mcu", seed=1), out, "q412")
    assert not out.exists()


def test_bad_prefix_and_missing_model(mcu_model, tmp_path, capsys):
    assert main(["--model", str(mcu_model), "--out", str(tmp_path / "x"), "--prefix", "9bad"]) == 2
    assert "prefix" in capsys.readouterr().err
    assert main(["--model", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "x")]) == 2
    assert "no such model file" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_weights_appear_in_the_source(tmp_path):
    """The C file carries the model's integers (packed pairs, low half first)."""
    model = random_model("mcu", seed=2)
    r = export(model, tmp_path / "o", "q412")
    l0 = model.layers[0]
    w = l0.weight[:, :, 0]  # [K, in=3] -> padded to 4 per row
    pad = np.zeros((l0.kernel_size, 4), np.int64)
    pad[:, :3] = w
    flat = pad.reshape(-1)
    word = (int(flat[0]) & 0xFFFF) | ((int(flat[1]) & 0xFFFF) << 16)
    word = word - (1 << 32) if word >= 1 << 31 else word
    assert str(word) in r.files["nnhdl_model.c"]


def test_run_target_c_matches_reference(tmp_path):
    """``nnhdl run --target c`` (host-compiled q412 code) equals ``--target reference``."""
    model_path = tmp_path / "m.npz"
    random_model("fpga_po2", seed=3).save(model_path)
    x = np.random.default_rng(0).integers(-32768, 32768, size=(3000, 4)).astype(np.int16)
    np.save(tmp_path / "x.npy", x)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for target in ("c", "reference"):
        p = subprocess.run([sys.executable, "-m", "nnhdl", "run", "--model", str(model_path), "--input",
                            str(tmp_path / "x.npy"), "--output", str(tmp_path / f"{target}.npy"), "--target", target],
                           capture_output=True, text=True, env=env)
        assert p.returncode == 0, p.stderr
    assert np.array_equal(np.load(tmp_path / "c.npy"), np.load(tmp_path / "reference.npy"))


@pytest.mark.skipif(not __import__("shutil").which("arm-none-eabi-gcc"), reason="needs gcc-arm-none-eabi")
def test_flash_limit_uses_measured_cortex_m7_size(tmp_path):
    model = random_model("mcu", seed=1)
    r = export(model, tmp_path / "ok", "q412")
    fp = r.footprint
    assert fp.measured_flash is not None and fp.measured_flash > fp.flash_data  # code + weights
    with pytest.raises(NnhdlError, match="measured with arm-none-eabi-gcc"):
        export(model, tmp_path / "no", "q412", flash_limit=fp.measured_flash - 1)
    assert not (tmp_path / "no").exists()
