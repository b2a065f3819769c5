"""tanh end to end: the integer function against its documented formula, then one random network
with tanh (and relu) layers through every back end -- golden model, amaranth.sim, Verilator,
q412 C on the host and on QEMU, float32 C, the JAX quantised forward."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from nnhdl.configs import LayerSpec, NetworkSpec, random_model
from nnhdl.fixedpoint import QFormat, activate, requantize
from nnhdl.reference import evaluate, evaluate_layer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FORMATS = [QFormat(16, 12), QFormat(16, 15), QFormat(12, 6), QFormat(24, 20), QFormat(8, 2)]


def _formula(m: int, width: int, frac: int) -> int:
    """The module docstring's integers, one mantissa at a time with math.tanh (written apart from the op)."""
    s = frac - 3 if frac > 3 else 0
    n = (4 * 2 ** frac) // 2 ** s
    t = [math.floor(math.tanh(i * 2 ** s / 2 ** frac) * 2 ** frac + 0.5) for i in range(n + 1)]
    a = -m if m < 0 else m
    i, r = a // 2 ** s, a % 2 ** s
    f = 2 ** frac if i >= n else t[i] + (((t[i + 1] - t[i]) * r + (2 ** s // 2)) // 2 ** s)
    return -f if m < 0 else min(f, 2 ** (width - 1) - 1)


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_integer_tanh_is_the_documented_formula(fmt):
    rng = np.random.default_rng(fmt.width * 31 + fmt.frac)
    m = np.concatenate([np.arange(-600, 601), [fmt.min_int, fmt.max_int, fmt.min_int + 1],
                        rng.integers(fmt.min_int, fmt.max_int + 1, 3000)])
    m = np.clip(m, fmt.min_int, fmt.max_int)
    got = activate(m, "tanh", None, fmt)
    assert got.tolist() == [_formula(int(v), fmt.width, fmt.frac) for v in m]


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_integer_tanh_error_and_shape(fmt):
    """Every mantissa of the format: within the stated bound of math.tanh, odd, monotone, in range."""
    m = np.arange(fmt.min_int, fmt.max_int + 1, max(1, (fmt.max_int - fmt.min_int) // 200_000))
    q = activate(m, "tanh", None, fmt)
    # the docstring's bound: (1/8)^2 / 8 * 4/(3 sqrt 3) + 2**-F (written out here, not taken from the op)
    bound = (1 / 8) ** 2 / 8 * 4 / (3 * math.sqrt(3)) + 2.0 ** -fmt.frac
    err = np.abs(q / fmt.scale - np.array([math.tanh(v / fmt.scale) for v in m]))
    assert err.max() <= bound
    assert np.all(np.diff(q) >= 0)
    assert q.min() >= fmt.min_int and q.max() <= fmt.max_int
    inner = m[(m > fmt.min_int) & (m <= fmt.max_int)]
    pos = activate(inner, "tanh", None, fmt)
    neg = activate(-inner, "tanh", None, fmt)
    ok = pos < fmt.max_int  # where +1.0 is not representable the positive side clips one LSB
    assert np.array_equal(neg[ok], -pos[ok])


SPEC = NetworkSpec("tanh", 3, (LayerSpec(4, 1, 6, "qb", "tanh"), LayerSpec(3, 2, 5, "qb", "relu"),
                               LayerSpec(2, 3, 4, "po2", "tanh"), LayerSpec(1, 1, 2, "qb", "tanh")))
N_LONG = 20_000


@pytest.fixture(scope="module")
def case():
    model = random_model(SPEC, seed=5)
    rng = np.random.default_rng(17)
    f = model.qformat
    x = rng.integers(f.min_int, f.max_int + 1, (N_LONG, model.input_dim))
    return model, x, evaluate(model, x)


def test_network_exercises_the_table(case):
    """The random network drives every tanh layer through the table, not only into saturation."""
    model, x, _ = case
    h = x
    for layer in model.layers:
        out = evaluate_layer(model, layer, h)
        if layer.activation == "tanh":
            inside = np.abs(out) < model.qformat.scale * 0.99
            assert inside.mean() > 0.2 and len(np.unique(out)) > 500
        h = out


def test_jax_quantised_forward_bit_exact(case):
    from training.model import golden_equivalent

    model, x, y = case
    assert np.array_equal(golden_equivalent(model, x[:4000]), y[:4000])


def test_jax_tanh_has_a_gradient():
    import jax
    import jax.numpy as jnp

    from training.quantisers import activate_units

    g = jax.grad(lambda v: jnp.sum(activate_units(v, "tanh", None, QFormat())))(jnp.array([0.0, 0.5, 3.0]))
    assert np.allclose(np.asarray(g), 1 - np.tanh([0.0, 0.5, 3.0]) ** 2)


def test_amaranth_sim_bit_exact(case):
    from nnhdl.hdl.network import Network
    from nnhdl.sim.pysim import stream_through

    model, x, y = case
    res = stream_through(Network(model, lanes=[3, 5, 2, 4]), x[:150], stall=0.2, seed=1)
    assert np.array_equal(res.output, y[:150])


@pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator not installed")
def test_verilator_bit_exact(case, tmp_path, monkeypatch):
    from nnhdl.sim.verilator import VerilatorSim

    model, x, y = case
    from nnhdl.hdl.schedule import schedule

    monkeypatch.setenv("NNHDL_CACHE", str(tmp_path / "cache"))
    sim = VerilatorSim(model)
    assert np.array_equal(sim.run(x), y)
    sched = schedule(model)  # the tanh layers' three pipeline stages are in the predicted latency
    assert sim.figures["latency_min"] == sim.figures["latency_max"] == sched.latency
    assert sim.figures["ii_min"] == sim.figures["ii_max"] == sched.initiation_interval
    assert np.array_equal(sim.run(x[:3000], stall=0.3, seed=3), y[:3000])  # stalls freeze the pipeline


def test_q412_host_bit_exact(case, tmp_path):
    from mcu.build import build_host, run_host
    from mcu.export import generate

    model, x, y = case
    for style in ("unrolled", "cmsis"):
        out, _ = run_host(build_host(generate(model, "q412", style=style), tmp_path / style), x)
        assert np.array_equal(out, y), style


@pytest.mark.skipif(not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
                    reason="needs gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm")
def test_q412_qemu_bit_exact(case, tmp_path):
    from mcu.build import build_arm, run_qemu
    from mcu.export import generate

    model, x, y = case
    b = build_arm(generate(model, "q412"), tmp_path, x[:3000])
    assert np.array_equal(run_qemu(b, "q412", model.output_dim).output, y[:3000])


def test_f32_host_within_bound_and_equal_to_emulation(case, tmp_path):
    from mcu.build import build_host, run_host
    from mcu.check import f32_close
    from mcu.export import generate
    from mcu.mirror import emulate_unrolled_f32

    model, x, _ = case
    xf = (x[:5000] / model.qformat.scale).astype(np.float32)
    for style in ("unrolled", "cmsis"):
        out, _ = run_host(build_host(generate(model, "f32", style=style), tmp_path / style), xf)
        ok, err, share = f32_close(model, xf, out)
        assert ok, (style, err, share)
        if style == "unrolled":
            assert np.array_equal(out.view(np.uint32), emulate_unrolled_f32(model, xf).view(np.uint32))


def test_tanh_in_layer_list_json_and_model_file(tmp_path):
    import json

    from nnhdl.configs import load_spec
    from nnhdl.errors import ModelError
    from nnhdl.model import Model

    cfg = tmp_path / "net.json"
    cfg.write_text(json.dumps({"input_dim": 2, "layers": [
        {"kernel_size": 2, "out_dim": 3, "activation": "tanh"}, {"kernel_size": 1, "out_dim": 1, "activation": "none"}]}))
    spec = load_spec(str(cfg))
    assert [l.activation for l in spec.layers] == ["tanh", "none"]
    model = random_model(spec, seed=1)
    model.save(tmp_path / "m.npz")
    back = Model.load(tmp_path / "m.npz")
    assert back.layers[0].activation == "tanh" and back.same_shapes(model)
    # relu_max belongs to relu alone; an unknown name lists the known ones
    bad = json.loads(cfg.read_text())
    bad["layers"][0]["relu_max"] = 100
    cfg.write_text(json.dumps(bad))
    with pytest.raises(ModelError, match="relu_max: only allowed with activation 'relu'"):
        load_spec(str(cfg))
    bad["layers"][0] = {"kernel_size": 2, "out_dim": 3, "activation": "gelu"}
    cfg.write_text(json.dumps(bad))
    with pytest.raises(ModelError, match="none, relu, tanh"):
        load_spec(str(cfg))


def test_planner_costs_tanh():
    from nnhdl.hdl.schedule import schedule

    model = random_model(SPEC, seed=5)
    relu = random_model(NetworkSpec("r", 3, tuple(LayerSpec(l.kernel_size, l.dilation, l.out_dim, l.kind, "relu")
                                                  for l in SPEC.layers)), seed=5)
    t, r = schedule(model), schedule(relu)
    # three tanh layers: one multiplier each beyond the relu network, and their ROM read-out in LUTs
    assert t.total("mult18") == r.total("mult18") + 3
    assert t.total("lut") > r.total("lut") and t.total("ff") > r.total("ff")
    assert t.total("act_mult18") == 3 and t.mac_efficiency() == r.mac_efficiency()  # not MAC lanes
    assert t.latency == r.latency + 3 * 3  # three pipeline stages per tanh layer
