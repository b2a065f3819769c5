"""The mission in one test: each bundled, trained model computes the same
integers in the golden model, the emitted C (host gcc + CMSIS-DSP) and the
generated RTL (Verilator), through the same ``python -m nnhdl run`` a user
types, on a long waveshaper input (triangle core wave, embedding sweeping
across all four corners)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from nnhdl import Model
from nnhdl.cli import main
from tests.test_hdl_verilator import _shared_cache

MODELS = Path(__file__).resolve().parent.parent / "nnhdl" / "models"
SAMPLES = 20_000


def _waveshaper_counts(model: Model, n: int) -> np.ndarray:
    """pmod counts: a 300 Hz triangle at +-5 V and the embedding walking the square's edge."""
    t = np.arange(n)
    phase = (t * 300.0 / model.sample_rate) % 1.0
    tri = 1.0 - 4.0 * np.abs(phase - 0.5)
    walk = 4.0 * t / n  # once around the edge of the embedding square
    e0 = np.interp(walk % 4.0, [0, 1, 2, 3, 4], [-1, -1, 1, 1, -1])
    e1 = np.interp(walk % 4.0, [0, 1, 2, 3, 4], [-1, 1, 1, -1, -1])
    channels = [tri, e0, e1, np.zeros(n)][: model.input_dim]
    return np.round(np.stack(channels, axis=1) * 20_000).astype(np.int16)  # 5 V = 20,000 counts


@pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator not installed (CI installs it)")
# Not fpga_wide (also bundled): its RTL folds 50,432 MACs per sample onto a big design, so
# verilating it and running 20,000 samples would add minutes to CI for no new arithmetic -- the
# three models here cover every layer kind; fpga_wide's integers are pinned against the golden
# model by tests/test_training_evaluate.py::test_bundled_models.
@pytest.mark.parametrize("name", ["fpga_qb", "fpga_po2", "mcu"])
def test_bundled_model_same_integers_everywhere(name: str, tmp_path: Path, tmp_path_factory, monkeypatch, capsys) -> None:
    monkeypatch.setenv("NNHDL_CACHE", _shared_cache(tmp_path_factory))
    path = MODELS / f"{name}.npz"
    model = Model.load(path)
    wavfile.write(tmp_path / "in.wav", model.sample_rate, _waveshaper_counts(model, SAMPLES))
    outputs = {}
    for target, extra in (("reference", []), ("c", []), ("rtl", ["--backend", "verilator"])):
        out = tmp_path / f"{target}.npy"
        code = main(["run", "--model", str(path), "--input", str(tmp_path / "in.wav"), "--output", str(out),
                     "--target", target, *extra])
        assert code == 0, capsys.readouterr().err
        outputs[target] = np.load(out)
    assert outputs["reference"].shape == (SAMPLES, model.output_dim)
    assert np.array_equal(outputs["c"], outputs["reference"])
    assert np.array_equal(outputs["rtl"], outputs["reference"])
    # A trained waveshaper is not silent: the comparison is over a live signal.
    assert np.std(outputs["reference"][:, 0]) > 500
