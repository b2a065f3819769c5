"""JAX forward pass == golden model; training lowers the loss; export is exact; resume is exact."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from nnhdl import reference
from nnhdl.configs import random_model, random_spec
from nnhdl.errors import ModelError, NnhdlError
from nnhdl.fixedpoint import QFormat
from nnhdl.model import Model
from training.model import Net, forward, golden_equivalent
from training.train import TrainConfig, Trainer, main as train_main

TINY = {"name": "tiny", "input_dim": 3, "sample_rate": 48000,
        "layers": [{"kernel_size": 3, "dilation": 1, "out_dim": 6, "kind": "qb", "activation": "relu"},
                   {"kernel_size": 1, "dilation": 1, "out_dim": 6, "kind": "po2", "activation": "relu"},
                   {"kernel_size": 3, "dilation": 3, "out_dim": 1, "kind": "qb", "activation": "none"}]}


@pytest.fixture
def tiny_config(tmp_path):
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(TINY))
    return str(p)


@pytest.mark.parametrize("seed", range(12))
def test_jax_float64_equals_golden_on_random_networks(seed):
    rng = np.random.default_rng(seed)
    fmt = [QFormat(16, 12), QFormat(12, 8), QFormat(20, 14)][seed % 3]
    spec = random_spec(rng, qformat=fmt)
    model = random_model(spec, seed=seed, extreme=seed % 2 == 1)
    x = rng.integers(fmt.min_int, fmt.max_int + 1, size=(700, model.input_dim))
    assert np.array_equal(golden_equivalent(model, x), reference.evaluate(model, x))


@pytest.mark.parametrize("name", ["fpga_qb", "fpga_po2", "mcu"])
def test_jax_float64_equals_golden_on_reference_networks(name):
    model = random_model(name, seed=7, extreme=True)
    x = np.random.default_rng(1).integers(-32768, 32768, size=(1500, model.input_dim))
    assert np.array_equal(golden_equivalent(model, x), reference.evaluate(model, x))


def test_training_lowers_loss_and_export_is_exact(tiny_config):
    tr = Trainer(TrainConfig(tiny_config, steps=150, batch=16, lr=1e-2, seed=3))
    before = tr.validation_losses(2)["quantised"]
    for _ in range(150):
        tr.train_step()
    after = tr.validation_losses(2)["quantised"]
    assert after < 0.7 * before
    model = tr.export()
    # The exported integers are the quantisers' output, and the trained float64
    # parameters through the JAX quantised pass give the golden model's integers.
    params64 = [{k: jnp.asarray(np.asarray(v, np.float64)) for k, v in p.items()} for p in tr.params]
    x = np.random.default_rng(0).integers(-9000, 9000, size=(1, 500, 3))
    y = np.asarray(forward(params64, jnp.asarray(x / 4096.0), tr.net, quantised=True))[0] * 4096
    assert np.array_equal(y, reference.evaluate(model, x[0]).astype(np.float64))
    for p, layer in zip(tr.params, model.layers):
        w = np.asarray(p["w"], np.float64)
        expected = np.floor(w * 4096 + 0.5) if layer.kind == "qb" else None
        if expected is not None:
            assert np.array_equal(layer.weight, np.clip(expected, -32768, 32767))


def test_resume_continues_exactly(tiny_config, tmp_path):
    cfg = TrainConfig(tiny_config, steps=20, batch=4, seed=1)
    a = Trainer(cfg)
    for _ in range(20):
        a.train_step()
    b = Trainer(cfg)
    for _ in range(10):
        b.train_step()
    b.save_checkpoint(tmp_path / "c.ckpt.npz")
    c = Trainer(cfg)
    c.load_checkpoint(tmp_path / "c.ckpt.npz")
    assert c.step == 10
    for _ in range(10):
        c.train_step()
    for pa, pc in zip(a.params, c.params):
        assert np.array_equal(np.asarray(pa["w"]), np.asarray(pc["w"]))
    other = Trainer(TrainConfig(tiny_config, steps=20, batch=4, seed=2))
    with pytest.raises(NnhdlError, match="different settings"):
        other.load_checkpoint(tmp_path / "c.ckpt.npz")


def test_train_cli_writes_model_with_meta(tiny_config, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "m.npz"
    assert train_main(["--config", tiny_config, "--steps", "30", "--batch", "4", "--out", str(out),
                       "--seed", "5", "--quiet"]) == 0
    m = Model.load(out)
    assert m.meta["steps"] == 30 and m.meta["seed"] == 5 and m.meta["data"] == "synthetic"
    assert m.meta["config"]["name"] == "tiny"
    assert set(m.meta["final_loss"]) == {"quantised", "float"}
    assert (tmp_path / "runs" / "m.ckpt.npz").exists()
    # resume past the end: more steps continue from the checkpoint
    assert train_main(["--config", tiny_config, "--steps", "40", "--batch", "4", "--out", str(out),
                       "--seed", "5", "--quiet", "--resume"]) == 0
    assert Model.load(out).meta["steps"] == 40


@pytest.mark.parametrize("layers, message", [
    ([{"kernel_size": 2, "out_dim": 4, "kind": "qx"}], "kind"),
    ([{"kernel_size": 0, "out_dim": 4}], "kernel_size"),
    ([{"out_dim": 4}], "malformed"),
])
def test_bad_configs_give_clear_errors(tmp_path, capsys, layers, message):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"input_dim": 3, "layers": layers}))
    out = tmp_path / "m.npz"
    assert train_main(["--config", str(p), "--steps", "2", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_config_errors(tmp_path, capsys):
    assert train_main(["--config", "no_such_net", "--out", str(tmp_path / "m.npz"), "--quiet"]) == 2
    assert "unknown configuration" in capsys.readouterr().err
    p = tmp_path / "two.json"
    p.write_text(json.dumps({"input_dim": 2, "layers": [{"kernel_size": 1, "out_dim": 1}]}))
    assert train_main(["--config", str(p), "--out", str(tmp_path / "m.npz"), "--quiet"]) == 2
    assert "at least 3 input channels" in capsys.readouterr().err
    with pytest.raises(NnhdlError, match="receptive field"):
        Trainer(TrainConfig("fpga_qb", window=10))
    with pytest.raises(NnhdlError, match="steps"):
        TrainConfig("fpga_qb", steps=0)


def test_short_training_improves_the_held_out_edge_score(tiny_config):
    tr = Trainer(TrainConfig(tiny_config, steps=300, batch=16, lr=1e-2, seed=4))
    corner0, edge0 = tr.held_out_scores()
    for _ in range(300):
        tr.train_step()
    corner1, edge1 = tr.held_out_scores()
    assert edge1 < 0.7 * edge0, (edge0, edge1)


def test_progress_line_shows_corner_and_edge_scores(tiny_config, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "m.npz"
    assert train_main(["--config", tiny_config, "--steps", "20", "--batch", "4", "--out", str(out),
                       "--score-every", "10"]) == 0
    err = capsys.readouterr().err
    assert "corner=" in err and "edge=" in err
    m = Model.load(out)
    assert [h[0] for h in m.meta["score_history"]] == [10, 20]
    assert m.meta["score_seconds"] >= 0
    with pytest.raises(SystemExit) as bad:  # refused while parsing the flags
        train_main(["--config", tiny_config, "--steps", "2", "--out", str(out), "--score-every", "-1", "--quiet"])
    assert bad.value.code == 2
    assert "--score-every" in capsys.readouterr().err


def test_init_starts_from_a_model_files_integers(tiny_config, tmp_path):
    tr = Trainer(TrainConfig(tiny_config, steps=40, batch=4, lr=1e-2, seed=6))
    for _ in range(40):
        tr.train_step()
    path = tmp_path / "start.npz"
    tr.export().save(path)
    start = Model.load(path)
    again = Trainer(TrainConfig(tiny_config, steps=10, batch=4, seed=1, init=str(path))).export()
    for a, b in zip(start.layers, again.layers):  # mantissa / 2**F back through the quantisers is exact
        assert np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)
    with pytest.raises(NnhdlError, match="different layers"):
        Trainer(TrainConfig("mcu", steps=10, init=str(path)))
