"""The evaluation command, and the bundled default models' claimed quality."""

import json
from pathlib import Path

import numpy as np
import pytest

from nnhdl.configs import NetworkSpec, LayerSpec, random_model
from nnhdl.model import Model
from training.evaluate import GOAL_MEAN, GOAL_WORST, jax_agreement, main, score

MODELS = Path(__file__).resolve().parent.parent / "nnhdl" / "models"


def _tiny(tmp_path) -> Path:
    spec = NetworkSpec("tiny", 3, (LayerSpec(3, 1, 4, "qb", "relu"), LayerSpec(1, 1, 4, "po2", "relu"),
                                   LayerSpec(2, 3, 1, "qb", "none")), 48000)
    model = random_model(spec, seed=2)
    model.meta["loss_history"] = [[10, 0.5], [20, 0.3], [30, 0.2]]
    path = tmp_path / "tiny.npz"
    model.save(path)
    return path


def test_evaluate_cli_writes_report_and_pictures(tmp_path, capsys):
    path = _tiny(tmp_path)
    out = tmp_path / "report"
    assert main(["--model", str(path), "--out", str(out), "--per-point", "2", "--length", "700"]) == 0
    text = capsys.readouterr().out
    assert "corners: mean" in text and "identical" in text
    for name in ("tiny_waveforms.png", "tiny_grid.png", "tiny_loss.png"):
        p = out / name
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert p.stat().st_size < 200_000
    md = (out / "tiny.md").read_text()
    assert "![grid](tiny_grid.png)" in md and "(exact)" in md and "| sine |" in md


def test_evaluate_json_and_errors(tmp_path, capsys):
    path = _tiny(tmp_path)
    assert main(["--model", str(path), "--no-pictures", "--json", "--per-point", "1", "--length", "300",
                 "--out", str(tmp_path / "r")]) == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d["nmse_corner"]) == {"sine", "ramp", "square", "zigzag"}
    assert d["jax_agreement"]["exact"] is True
    for k, v in d["nmse_corner"].items():  # the per-band shares add up to the corner's NMSE
        assert sum(d["nmse_corner_by_band"][k].values()) == pytest.approx(v)
    assert main(["--model", str(tmp_path / "missing.npz")]) == 2
    assert "no such model file" in capsys.readouterr().err
    narrow = random_model(NetworkSpec("n", 2, (LayerSpec(1, 1, 1, "qb", "none"),)), seed=0)
    narrow.save(tmp_path / "n.npz")
    assert main(["--model", str(tmp_path / "n.npz")]) == 2
    assert "needs >= 3" in capsys.readouterr().err


def test_nmse_is_zero_for_perfect_and_one_for_silent_output(tmp_path):
    """Sanity of the metric: an all-zero network scores the target's variance ratio exactly 1 (mean-free)."""
    spec = NetworkSpec("zero", 3, (LayerSpec(1, 1, 1, "qb", "none"),), 48000)
    model = random_model(spec, seed=0, scale=0.0)
    s = score(model, per_point=2, length=600, float_model=False)
    for v in s.corner.values():
        assert 0.9 < v < 1.3  # sum(t^2) / sum((t - mean)^2) for near zero-mean targets


@pytest.mark.parametrize("name, rate", [("fpga_qb", 192000), ("fpga_po2", 192000), ("mcu", 48000),
                                        ("fpga_wide", 192000)])
def test_bundled_models(name, rate):
    path = MODELS / f"{name}.npz"
    model = Model.load(path)
    assert model.sample_rate == rate and model.meta["name"] == name
    assert model.meta["trained_by"].startswith("training.train")
    assert (MODELS / f"{name}.md").is_file()
    for png in MODELS.glob(f"{name}_*.png"):
        assert png.stat().st_size < 200_000
    assert jax_agreement(model, samples=1024)["exact"]


def test_bundled_fpga_qb_meets_its_goal():
    """The quality goal, measured with the golden integer model on the held-out set."""
    s = score(Model.load(MODELS / "fpga_qb.npz"), float_model=False)
    assert s.mean <= GOAL_MEAN and s.worst <= GOAL_WORST, s.corner


def test_scores_cover_corners_edges_and_interior(tmp_path, capsys):
    path = _tiny(tmp_path)
    assert main(["--model", str(path), "--no-pictures", "--json", "--per-point", "1", "--length", "300",
                 "--out", str(tmp_path / "r")]) == 0
    d = json.loads(capsys.readouterr().out)
    edges = [("sine", "ramp"), ("ramp", "square"), ("square", "zigzag"), ("zigzag", "sine")]
    assert set(d["nmse_edge"]) == {f"{a}/{b}@{al}" for a, b in edges for al in ("0.25", "0.5", "0.75")}
    assert len(d["nmse_interior"]) == 9 and not set(d["nmse_interior"]) & set(d["nmse_edge"])
    for kind in ("corner", "edge", "interior"):
        v = list(d[f"nmse_{kind}"].values())
        assert d[f"nmse_{kind}_mean"] == pytest.approx(np.mean(v)) and d[f"nmse_{kind}_worst"] == max(v)
    assert set(d["goals_met"]) == {"corner", "edge"}
    assert main(["--model", str(path), "--no-pictures", "--per-point", "1", "--length", "300",
                 "--out", str(tmp_path / "r")]) == 0
    text = capsys.readouterr().out
    assert "edges: mean" in text and "interior: mean" in text and "ramp/square@0.25" in text
    md = (tmp_path / "r" / "tiny.md").read_text()
    assert "| edges (alpha 0.25/0.5/0.75) |" in md and "## Inside the square" in md and "| (+0,+0) |" in md


def test_edge_and_interior_nmse_of_a_silent_network_is_the_targets_power_ratio(tmp_path):
    """Zero output: NMSE = sum(t^2) / sum((t - mean t)^2), pooled over a point's windows after the receptive field."""
    from training.data import test_set

    spec = NetworkSpec("zero", 3, (LayerSpec(3, 2, 1, "qb", "none"),), 48000)
    model = random_model(spec, seed=0, scale=0.0)
    s = score(model, per_point=2, length=500, float_model=False)
    segs = test_set(3, 48000, model.qformat, per_point=2, length=500, alphas=(0.25, 0.5, 0.75),
                    interior=tuple((a, b) for b in (0.5, 0.0, -0.5) for a in (-0.5, 0.0, 0.5)))
    start = model.receptive_field - 1
    pooled: dict[str, list[np.ndarray]] = {}
    for seg in segs:
        pooled.setdefault(seg.label, []).append(seg.y[start:].astype(np.float64))
    for label, parts in pooled.items():
        t = np.concatenate(parts)
        expected = np.sum(t ** 2) / np.sum((t - t.mean()) ** 2)
        got = {**s.corner, **s.edge, **s.interior}[label]
        assert got == pytest.approx(expected, rel=1e-12)
