"""The model file: round trips, and every malformed file rejected with one
message naming the field, through the Python API and through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from nnhdl import Model, ModelError
from nnhdl.cli import main
from nnhdl.configs import random_model

Arrays = dict[str, np.ndarray]


def _arrays(model: Model) -> Arrays:
    a: Arrays = {"manifest": np.array(json.dumps(model.manifest()))}
    for n, l in enumerate(model.layers):
        a[f"layer{n}.weight"] = l.weight.astype(np.int32)
        a[f"layer{n}.bias"] = l.bias.astype(np.int32)
    return a


def _edit_manifest(edit: Callable[[dict], None]) -> Callable[[Arrays], None]:
    def apply(a: Arrays) -> None:
        m = json.loads(str(a["manifest"]))
        edit(m)
        a["manifest"] = np.array(json.dumps(m))

    return apply


def _set(key: str, value: object) -> Callable[[dict], None]:
    def edit(m: dict) -> None:
        m[key] = value

    return edit


def _set_layer(n: int, key: str, value: object) -> Callable[[dict], None]:
    def edit(m: dict) -> None:
        m["layers"][n][key] = value

    return edit


def _put(name: str, value: np.ndarray) -> Callable[[Arrays], None]:
    def apply(a: Arrays) -> None:
        a[name] = value

    return apply


def _drop(name: str) -> Callable[[Arrays], None]:
    def apply(a: Arrays) -> None:
        del a[name]

    return apply


def _poke(name: str, index: tuple, value: int) -> Callable[[Arrays], None]:
    def apply(a: Arrays) -> None:
        a[name] = a[name].copy()
        a[name][index] = value

    return apply


# (case id, mutation of a valid fpga_po2 file's arrays, text the message must contain)
CASES: list[tuple[str, Callable[[Arrays], None], str]] = [
    ("missing manifest", _drop("manifest"), "manifest"),
    ("json garbage", _put("manifest", np.array("{not json")), "not valid JSON"),
    ("manifest not a string", _put("manifest", np.arange(3)), "manifest"),
    ("unknown format", _edit_manifest(_set("format", "onnx")), "format"),
    ("unknown version", _edit_manifest(_set("version", 2)), "version"),
    ("missing version", _edit_manifest(lambda m: m.pop("version")), "version"),
    ("bad width", _edit_manifest(_set("qformat", {"width": 40, "frac": 12})), "qformat"),
    ("bad rounding", _edit_manifest(_set("rounding", "trunc")), "rounding"),
    ("output_dim mismatch", _edit_manifest(_set("output_dim", 5)), "output_dim"),
    ("input_dim zero", _edit_manifest(_set("input_dim", 0)), "input_dim"),
    ("sample rate text", _edit_manifest(_set("sample_rate", "fast")), "sample_rate"),
    ("no layers", _edit_manifest(_set("layers", [])), "layers"),
    ("shape chain broken", _edit_manifest(_set_layer(1, "in_dim", 7)), "layers[1].in_dim"),
    ("kernel size zero", _edit_manifest(_set_layer(0, "kernel_size", 0)), "kernel_size"),
    ("negative dilation", _edit_manifest(_set_layer(1, "dilation", -4)), "dilation"),
    ("unknown kind", _edit_manifest(_set_layer(0, "kind", "ternary")), "kind"),
    ("unknown activation", _edit_manifest(_set_layer(0, "activation", "gelu")), "activation"),
    ("relu_max without relu", _edit_manifest(_set_layer(2, "relu_max", 100)), "relu_max"),
    ("relu_max out of range", _edit_manifest(_set_layer(0, "relu_max", 40000)), "relu_max"),
    ("missing weight array", _drop("layer1.weight"), "layer1.weight"),
    ("missing bias array", _drop("layer3.bias"), "layer3.bias"),
    ("float weights", _put("layer0.weight", np.zeros((4, 4, 8), np.float32)), "layer0.weight"),
    ("weight shape", _put("layer0.weight", np.zeros((4, 4, 9), np.int32)), "layer0.weight"),
    ("value does not fit", _poke("layer1.weight", (0, 0, 0), 40000), "fit"),
    ("bias does not fit", _poke("layer0.bias", (0,), -40000), "layer0.bias"),
    ("po2 weight not a power", _poke("layer2.weight", (0, 1, 1), 3), "layer2.weight"),
    ("po2 weight too big", _poke("layer3.weight", (0, 0, 0), 8192), "power-of-two"),
    ("unexpected array", _put("layer9.weight", np.zeros(3, np.int32)), "unexpected"),
]


@pytest.fixture(scope="module")
def valid() -> Model:
    return random_model("fpga_po2", seed=11)


def _write_mutated(valid: Model, mutate: Callable[[Arrays], None], path: Path) -> Path:
    a = _arrays(valid)
    mutate(a)
    with open(path, "wb") as f:
        np.savez(f, **a)
    return path


def test_round_trip_preserves_everything(valid: Model, tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    valid.save(path)
    loaded = Model.load(path)
    assert loaded.manifest() == valid.manifest()
    assert loaded.fingerprint() == valid.fingerprint()
    for a, b in zip(loaded.layers, valid.layers):
        assert np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)
    with np.load(path, allow_pickle=False) as z:  # the format as DESIGN §3 states it
        assert z["layer0.weight"].dtype == np.int32 and z["manifest"].shape == ()
        assert json.loads(str(z["manifest"]))["format"] == "nnhdl-model"


def test_fingerprint_ignores_meta_but_not_weights(valid: Model, tmp_path: Path) -> None:
    valid.save(tmp_path / "a.npz")
    other = Model.load(tmp_path / "a.npz")
    other.meta = {"name": "renamed"}
    assert other.fingerprint() == valid.fingerprint()
    other.layers[0].weight[0, 0, 0] += 1
    assert other.fingerprint() != valid.fingerprint()


@pytest.mark.parametrize("case,mutate,needle", CASES, ids=[c[0] for c in CASES])
def test_malformed_file_rejected_by_api(valid: Model, tmp_path: Path, case: str, mutate, needle: str) -> None:
    path = _write_mutated(valid, mutate, tmp_path / "bad.npz")
    with pytest.raises(ModelError) as info:
        Model.load(path)
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


def test_not_an_npz_and_truncated(valid: Model, tmp_path: Path) -> None:
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ModelError, match="not an nnhdl model"):
        Model.load(text)
    good = tmp_path / "good.npz"
    valid.save(good)
    data = good.read_bytes()
    for cut in (len(data) // 3, len(data) - 30):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelError):
            Model.load(bad)
    with pytest.raises(ModelError, match="no such"):
        Model.load(tmp_path / "missing.npz")


def test_save_refuses_invalid_models_and_leaves_no_file(valid: Model, tmp_path: Path) -> None:
    bad = random_model("fpga_qb", seed=1)
    bad.layers[0].weight[0, 0, 0] = 1 << 20
    out = tmp_path / "out.npz"
    with pytest.raises(ModelError, match="does not fit"):
        bad.save(out)
    assert list(tmp_path.iterdir()) == []


# -- the CLI: exit 2, one line on stderr, no traceback, no output file -----------------


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case,mutate,needle", CASES, ids=[c[0] for c in CASES])
def test_malformed_file_rejected_by_cli(valid: Model, tmp_path: Path, capsys, case: str, mutate, needle: str) -> None:
    path = _write_mutated(valid, mutate, tmp_path / "bad.npz")
    np.save(tmp_path / "in.npy", np.zeros((10, 4), np.int16))
    for args in (["info", str(path)],
                 ["run", "--model", str(path), "--input", str(tmp_path / "in.npy"), "--output", str(tmp_path / "o.npy")]):
        code, out, err = _cli(args, capsys)
        assert code == 2
        assert err.count("\n") == 1 and err.startswith("nnhdl: error:") and needle in err
    assert not (tmp_path / "o.npy").exists()


def test_cli_subprocess_prints_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    np.save(tmp_path / "in.npy", np.zeros((10, 4), np.int16))
    proc = subprocess.run(
        [sys.executable, "-m", "nnhdl", "run", "--model", str(bad), "--input", str(tmp_path / "in.npy"),
         "--output", str(tmp_path / "out.wav")],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "out.wav").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz", "in.npy"]
