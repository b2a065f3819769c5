"""``python -m nnhdl`` end to end: init, info, run on .npy and .wav."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from nnhdl import Model
from nnhdl.cli import main
from nnhdl.reference import StreamingModel


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    c = capsys.readouterr()
    return code, c.out, c.err


@pytest.mark.parametrize("config", ["fpga_qb", "fpga_po2", "mcu"])
def test_init_then_info(config: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / f"{config}.npz"
    code, _, _ = _cli(["init", "--config", config, "--seed", "4", "--out", str(out)], capsys)
    assert code == 0
    code, text, _ = _cli(["info", str(out)], capsys)
    assert code == 0
    model = Model.load(out)
    assert f"{model.params:,}" in text and "receptive field" in text
    assert f"{model.receptive_field} samples" in text


def test_init_is_deterministic(tmp_path: Path, capsys) -> None:
    for name in ("a", "b"):
        assert _cli(["init", "--config", "mcu", "--seed", "9", "--out", str(tmp_path / f"{name}.npz")], capsys)[0] == 0
    assert Model.load(tmp_path / "a.npz").fingerprint() == Model.load(tmp_path / "b.npz").fingerprint()


def test_run_npy_equals_streaming_golden(tmp_path: Path, capsys) -> None:
    model_path = tmp_path / "m.npz"
    _cli(["init", "--config", "fpga_qb", "--out", str(model_path)], capsys)
    x = np.random.default_rng(0).integers(-32768, 32768, size=(1500, 4)).astype(np.int16)
    np.save(tmp_path / "in.npy", x)
    code, out, _ = _cli(["run", "--model", str(model_path), "--input", str(tmp_path / "in.npy"),
                         "--output", str(tmp_path / "out.npy")], capsys)
    assert code == 0 and "1,500 samples" in out
    y = np.load(tmp_path / "out.npy")
    assert y.dtype == np.int16 and y.shape == (1500, 4)
    assert np.array_equal(y, StreamingModel(Model.load(model_path)).run(x))


def test_run_wav_shifts_counts_like_the_hardware(tmp_path: Path, capsys) -> None:
    model_path = tmp_path / "m.npz"
    _cli(["init", "--config", "fpga_qb", "--seed", "2", "--out", str(model_path)], capsys)
    counts = np.random.default_rng(1).integers(-32768, 32768, size=(800, 4)).astype(np.int16)
    wavfile.write(tmp_path / "in.wav", 192000, counts)
    code, _, _ = _cli(["run", "--model", str(model_path), "--input", str(tmp_path / "in.wav"),
                       "--output", str(tmp_path / "out.wav")], capsys)
    assert code == 0
    rate, out = wavfile.read(tmp_path / "out.wav")
    assert rate == 192000 and out.dtype == np.int16
    mantissas = counts.astype(np.int64) >> 2  # arithmetic shift: floor
    expected = StreamingModel(Model.load(model_path)).run(mantissas)
    assert np.array_equal(out, np.clip(expected * 4, -32768, 32767))


@pytest.mark.parametrize(
    "args,needle",
    [
        (["init", "--config", "nope", "--out", "{d}/m.npz"], "unknown configuration"),
        (["init", "--config", "mcu", "--out", "{d}/missing/m.npz"], "does not exist"),
        (["run", "--model", "{d}/good.npz", "--input", "{d}/in3.npy", "--output", "{d}/o.npy"], "channels"),
        (["run", "--model", "{d}/good.npz", "--input", "{d}/float.npy", "--output", "{d}/o.npy"], "not integer"),
        (["run", "--model", "{d}/good.npz", "--input", "{d}/nothere.npy", "--output", "{d}/o.npy"], "no such"),
        (["run", "--model", "{d}/good.npz", "--input", "{d}/in.txt", "--output", "{d}/o.npy"], "unknown input"),
        (["run", "--model", "{d}/good.npz", "--input", "{d}/in4.npy", "--output", "{d}/o.mp3"], "unknown output"),
        (["run", "--model", "{d}/good.npz", "--input", "{d}/big.npy", "--output", "{d}/o.npy"], "outside"),
    ],
)
def test_bad_cli_input(args: list[str], needle: str, tmp_path: Path, capsys) -> None:
    _cli(["init", "--config", "fpga_qb", "--out", str(tmp_path / "good.npz")], capsys)
    np.save(tmp_path / "in3.npy", np.zeros((5, 3), np.int16))
    np.save(tmp_path / "in4.npy", np.zeros((5, 4), np.int16))
    np.save(tmp_path / "float.npy", np.zeros((5, 4)))
    np.save(tmp_path / "big.npy", np.full((5, 4), 40000, np.int32))
    (tmp_path / "in.txt").write_text("1 2 3 4")
    before = set(tmp_path.iterdir())
    code, _, err = _cli([a.format(d=tmp_path) for a in args], capsys)
    assert code == 2 and needle in err and err.count("\n") == 1
    assert set(tmp_path.iterdir()) == before


@pytest.mark.parametrize("layer", [{"kernel_size": 0, "out_dim": 4}, {"kernel_size": 2, "dilation": -1, "out_dim": 4},
                                   {"kernel_size": 2, "out_dim": 0}])
def test_init_refuses_bad_layer_list_json(layer: dict, tmp_path: Path, capsys) -> None:
    import json

    cfg = tmp_path / "net.json"
    cfg.write_text(json.dumps({"input_dim": 3, "layers": [layer]}))
    code, _, err = _cli(["init", "--config", str(cfg), "--out", str(tmp_path / "m.npz")], capsys)
    assert code == 2 and err.count("\n") == 1 and "positive integer" in err
    assert not (tmp_path / "m.npz").exists()


def test_written_files_are_readable_by_others(tmp_path: Path, capsys) -> None:
    import os
    import stat

    out = tmp_path / "m.npz"
    _cli(["init", "--out", str(out)], capsys)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
