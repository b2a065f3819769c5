"""CLI: info --hw, run --target rtl (pysim, verilator), synth argument errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from nnhdl.cli import main
from nnhdl.configs import random_model
from nnhdl.hdl.planner import plan
from nnhdl.hdl.schedule import schedule
from nnhdl.reference import evaluate


@pytest.fixture()
def qb(tmp_path):
    path = tmp_path / "qb.npz"
    random_model("fpga_qb", seed=4).save(path)
    return path


def test_info_hw_prints_schedule_and_verdict(qb, capsys):
    assert main(["info", str(qb), "--hw", "--lanes", "1", "--clock-mhz", "100"]) == 0
    out = capsys.readouterr().out
    s = schedule(random_model("fpga_qb", seed=4), 1)
    assert f"initiation interval {s.initiation_interval} cycles per sample, latency {s.latency} cycles" in out
    assert "NOT MET" in out  # 16 x 64 beats + 2 = 1026 cycles > 100 MHz / 192 kHz = 520.8
    assert main(["info", str(qb), "--hw", "--clock-mhz", "100"]) == 0
    assert ": MET" in capsys.readouterr().out


def test_info_hw_bad_lanes(qb, capsys):
    assert main(["info", str(qb), "--hw", "--lanes", "1,x"]) == 2
    assert "--lanes" in capsys.readouterr().err
    assert main(["info", str(qb), "--hw", "--lanes", "1,2"]) == 2
    assert "3 layers" in capsys.readouterr().err


def test_run_rtl_pysim_with_vcd(qb, tmp_path, capsys):
    model = random_model("fpga_qb", seed=4)
    x = np.random.default_rng(0).integers(-5000, 5000, (12, 4))
    np.save(tmp_path / "x.npy", x)
    vcd = tmp_path / "t.vcd"
    assert main(["run", "--model", str(qb), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"),
                 "--target", "rtl", "--backend", "pysim", "--vcd", str(vcd)]) == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), evaluate(model, x))
    assert vcd.stat().st_size > 1000
    out = capsys.readouterr().out
    planned = schedule(model, plan(model).lanes)  # run --target rtl builds the planner's lanes by default
    assert f"initiation interval (simulated): {planned.initiation_interval}" in out
    assert f"latency (simulated): {planned.latency}" in out


@pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator not installed")
def test_run_rtl_verilator(qb, tmp_path, tmp_path_factory, capsys, monkeypatch):
    from tests.test_hdl_verilator import _shared_cache

    monkeypatch.setenv("NNHDL_CACHE", _shared_cache(tmp_path_factory))
    model = random_model("fpga_qb", seed=4)
    x = np.random.default_rng(1).integers(-32768, 32768, (3000, 4))
    np.save(tmp_path / "x.npy", x)
    args = ["run", "--model", str(qb), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"),
            "--target", "rtl", "--backend", "verilator"]
    assert main(args) == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), evaluate(model, x))
    out = capsys.readouterr().out
    planned = schedule(model, plan(model).lanes)  # run --target rtl builds the planner's lanes by default
    assert f"initiation interval (simulated): {planned.initiation_interval}" in out
    assert f"latency (simulated): {planned.latency}" in out
    assert main(args + ["--vcd", str(tmp_path / "t.vcd")]) == 2
    assert "--vcd needs --backend pysim" in capsys.readouterr().err


def test_synth_refuses_tmp_build_dir(qb, capsys):
    assert main(["synth", str(qb), "--build-dir", "/tmp/nnhdl-synth"]) == 2
    assert "/tmp" in capsys.readouterr().err
