"""training.widen: the wide starting point plays what the narrow model plays (golden model, both)."""

import hashlib
from pathlib import Path

import jax
import numpy as np
import pytest

from nnhdl import reference
from nnhdl.configs import load_spec, random_model
from nnhdl.errors import NnhdlError
from nnhdl.model import Model
from training.model import Net, export_model
from training.widen import main as widen_main, widen

ROOT = Path(__file__).resolve().parent.parent


def _inputs(model: Model, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-3 * 4096, 3 * 4096, size=(n, model.input_dim))


@pytest.mark.parametrize("seed", [0, 1])  # 1: a second draw of every weight
def test_wide_start_plays_the_narrow_model(seed):
    """Equal, except a negative narrow output may come out one LSB higher (floor(-a) = -ceil(a))."""
    narrow = random_model("fpga_qb", seed=seed)
    net = Net.from_spec(load_spec("fpga_wide"))
    wide = export_model(widen(narrow, net, jax.random.PRNGKey(seed)), net, {})
    x = _inputs(narrow, 1000, seed)
    a, b = reference.evaluate(narrow, x), reference.evaluate(wide, x)
    assert a.shape == b.shape
    assert np.all((b == a) | ((b == a + 1) & (a < 0)))
    assert (a > 0).any() and (a < 0).any()  # a live signal of both signs


def test_widen_refuses_networks_that_do_not_fit(tmp_path, capsys):
    net = Net.from_spec(load_spec("fpga_wide"))
    with pytest.raises(NnhdlError, match="differ in inputs"):
        widen(random_model("mcu", seed=0), net, jax.random.PRNGKey(0))  # 3 inputs, fpga_wide 4
    with pytest.raises(NnhdlError, match="at least 8 layers"):
        widen(random_model("fpga_po2", seed=0), net, jax.random.PRNGKey(0))  # 7 layers into 5
    with pytest.raises(NnhdlError, match="enough filters"):  # 64 filters into 8
        widen(random_model("fpga_wide", seed=0), Net.from_spec(load_spec("fpga_po2")), jax.random.PRNGKey(0))
    random_model("mcu", seed=0).save(tmp_path / "m.npz")
    assert widen_main(["--source", str(tmp_path / "m.npz"), "--config", "fpga_wide",
                       "--out", str(tmp_path / "w.npz")]) == 2
    assert "differ in inputs" in capsys.readouterr().err and not (tmp_path / "w.npz").exists()


def test_committed_wide_start_is_reproduced_by_its_command(tmp_path):
    """training/base/fpga_wide.npz (the --init of the bundled fpga_wide) from its own command."""
    base = Model.load(ROOT / "training" / "base" / "fpga_wide.npz")
    source = ROOT / base.meta["source"]
    if hashlib.sha256(source.read_bytes()).hexdigest() != base.meta["source_sha256"]:
        pytest.skip(f"{base.meta['source']} was retrained after the wide start was made from it")
    out = tmp_path / "w.npz"
    assert widen_main(["--source", str(source), "--config", "fpga_wide", "--seed", str(base.meta["seed"]),
                       "--out", str(out)]) == 0
    again = Model.load(out)
    for l, m in zip(base.layers, again.layers):
        assert np.array_equal(l.weight, m.weight) and np.array_equal(l.bias, m.bias)
