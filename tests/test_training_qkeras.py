"""qkeras import on a real qkeras weight dict (fixture made by tests/fixtures/make_qkeras_fixture.py)."""

import io
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from nnhdl import reference
from nnhdl.errors import NnhdlError
from nnhdl.fixedpoint import is_po2
from nnhdl.model import Model
from training.import_qkeras import import_qkeras, load_layer_info, load_weights, main

FIX = Path(__file__).parent / "fixtures"


@pytest.fixture
def weights():
    return load_weights(FIX / "qkeras_weights.pkl")


@pytest.fixture
def info():
    return load_layer_info(FIX / "qkeras_layer_info.json")


def test_import_matches_qkeras_prediction(weights, info):
    model = import_qkeras(weights, info)
    assert [l.dilation for l in model.layers] == [1, 4, 1, 16]
    assert [l.kind for l in model.layers] == ["qb", "qb", "po2", "qb"]
    assert [l.activation for l in model.layers] == ["relu", "relu", "relu", "none"]
    assert np.all(is_po2(model.layers[2].weight, model.qformat))
    io_ = np.load(FIX / "qkeras_io.npz")
    # qkeras' own forward pass (quantised weights, float activations) == nnhdl's float evaluation
    # (TensorFlow computes in float32, in an order of its own: the derived float32 bound covers any order)
    y, bound = reference.evaluate_float_bound(model, io_["x"], reference.FLOAT32_UNIT_ROUNDOFF)
    assert np.all(np.abs(y - io_["y"]) <= bound)
    # and the integer golden model stays within a few LSB per layer of it
    yi = model.qformat.to_float(reference.evaluate(model, model.qformat.quantize(io_["x"])))
    assert np.max(np.abs(yi - io_["y"])) < 64 / model.qformat.scale


def test_weights_are_exact_mantissas(weights, info):
    model = import_qkeras(weights, info)
    for layer, lid in zip(model.layers, ["qconv_0_qb", "qconv_1_qb", "qconv_2_po2", "qconv_3_qb"]):
        assert np.array_equal(layer.weight / 4096.0, weights[lid][0].astype(np.float64))
        assert np.array_equal(layer.bias / 4096.0, weights[lid][1].astype(np.float64))


def test_cli_pkl_and_npz(tmp_path, weights, capsys):
    out = tmp_path / "q.npz"
    assert main(["--weights", str(FIX / "qkeras_weights.pkl"), "--layer-info", str(FIX / "qkeras_layer_info.json"),
                 "--out", str(out)]) == 0
    m = Model.load(out)
    npz = tmp_path / "w.npz"
    np.savez(npz, **{f"{k}/{part}": v[i] for k, v in weights.items() for i, part in enumerate(["kernel", "bias"])})
    out2 = tmp_path / "q2.npz"
    assert main(["--weights", str(npz), "--layer-info", str(FIX / "qkeras_layer_info.json"), "--out", str(out2)]) == 0
    assert Model.load(out2).fingerprint() == m.fingerprint()


def _run_bad(tmp_path, capsys, weights=None, info=None, extra=()):
    wpath = tmp_path / "w.pkl"
    ipath = tmp_path / "info.json"
    if weights is None:
        shutil.copy(FIX / "qkeras_weights.pkl", wpath)
    else:
        wpath.write_bytes(pickle.dumps(weights))
    if info is None:
        shutil.copy(FIX / "qkeras_layer_info.json", ipath)
    else:
        ipath.write_text(json.dumps(info))
    out = tmp_path / "out.npz"
    assert main(["--weights", str(wpath), "--layer-info", str(ipath), "--out", str(out), *extra]) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def _raw():
    with open(FIX / "qkeras_weights.pkl", "rb") as f:
        return pickle.load(f)


def test_non_representable_qb_value(tmp_path, capsys):
    raw = _raw()
    raw["qconv_1_qb"]["weights"][0][2, 3, 1] += 1e-5
    assert "qconv_1_qb.kernel[2, 3, 1]" in _run_bad(tmp_path, capsys, weights=raw)
    # --round accepts it
    wpath = tmp_path / "w.pkl"
    assert main(["--weights", str(wpath), "--layer-info", str(FIX / "qkeras_layer_info.json"),
                 "--out", str(tmp_path / "r.npz"), "--round"]) == 0


def test_out_of_range_qb_value(tmp_path, capsys):
    raw = _raw()
    raw["qconv_0_qb"]["weights"][1][0] = 9.0  # the original's quantized_bits(16, 4) range
    assert "outside Q4.12" in _run_bad(tmp_path, capsys, weights=raw)


def test_po2_snap_tolerance(tmp_path, capsys):
    raw = _raw()
    raw["qconv_2_po2"]["weights"][0][0, 0, 0] = 0.3
    assert "not a power of two" in _run_bad(tmp_path, capsys, weights=raw)
    raw["qconv_2_po2"]["weights"][0][0, 0, 0] = 0.25 + 1e-6  # within half an LSB: snapped
    wpath = tmp_path / "ok.pkl"
    wpath.write_bytes(pickle.dumps(raw))
    assert main(["--weights", str(wpath), "--layer-info", str(FIX / "qkeras_layer_info.json"),
                 "--out", str(tmp_path / "ok.npz")]) == 0
    assert Model.load(tmp_path / "ok.npz").layers[2].weight[0, 0, 0] == 1024


@pytest.mark.parametrize("edit, message", [
    (lambda i: i.__setitem__(0, {"type": "qb", "id": "nope"}), "id 'nope' is not in the weights"),
    (lambda i: i.append({"type": "conv"}), "unknown type 'conv'"),
    (lambda i: i.pop(2), "no dilation entry precedes it"),
    (lambda i: i[2].__setitem__("depth", 5), "has depth 5"),
    (lambda i: (i.pop(), i.pop()), "not named in the layer info"),
    (lambda i: i.pop(), "ends with a dilation entry"),
])
def test_bad_layer_info(tmp_path, capsys, info, edit, message):
    edit(info)
    assert message in _run_bad(tmp_path, capsys, info=info)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickle_with_code_is_refused(tmp_path, capsys):
    err = _run_bad(tmp_path, capsys, weights={"x": _Evil()})
    assert "refusing to unpickle builtins.print" in err
    assert "pwned" not in capsys.readouterr().out


def test_no_tensorflow_needed():
    import sys

    assert "tensorflow" not in sys.modules and "qkeras" not in sys.modules
