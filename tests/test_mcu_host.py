"""The emitted Q4.12 C, compiled with the host gcc, against the golden model (every integer)."""

from __future__ import annotations

import numpy as np
import pytest

from nnhdl.configs import REFERENCE, NetworkSpec, LayerSpec, random_model, random_spec
from nnhdl.fixedpoint import QFormat
from nnhdl.model import Layer, Model
from nnhdl.reference import evaluate

from mcu.build import build_host, run_host
from mcu.check import check, make_test_input
from mcu.export import generate
from mcu.plan import INT32_MAX, plan_model

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

N = 10_000


def host_outputs(model: Model, x: np.ndarray, workdir, **kw) -> np.ndarray:
    result = generate(model, "q412", **kw)
    prog = build_host(result, workdir)
    y, _ = run_host(prog, x)
    return y


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_configs_bit_exact(name, tmp_path):
    model = random_model(name, seed=3)
    x = make_test_input(model, N, seed=1)
    assert np.array_equal(host_outputs(model, x, tmp_path), evaluate(model, x))


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_configs_extreme_weights_bit_exact(name, tmp_path):
    """Full-range weights: 64-bit accumulators and saturation everywhere."""
    model = random_model(name, seed=4, extreme=True)
    assert not all(lp.acc32 for lp in plan_model(model, "q412").layers)
    x = make_test_input(model, N, seed=2)
    assert np.array_equal(host_outputs(model, x, tmp_path), evaluate(model, x))


@pytest.mark.parametrize("seed", range(8))
def test_random_models_bit_exact(seed, tmp_path):
    """qb and po2 layers, odd dims, dilations 1..7, floor/nearest, relu_max."""
    rng = np.random.default_rng(100 + seed)
    spec = random_spec(rng, max_layers=4, max_dim=7, max_dilation=7)
    model = random_model(spec, seed=seed, extreme=bool(seed % 2))
    x = make_test_input(model, N, seed=seed)
    assert np.array_equal(host_outputs(model, x, tmp_path), evaluate(model, x))


@pytest.mark.parametrize("fmt", [QFormat(16, 15), QFormat(12, 8), QFormat(8, 4), QFormat(10, 0)])
def test_other_formats_bit_exact(fmt, tmp_path):
    spec = NetworkSpec("f", 3, (LayerSpec(3, 2, 5, "qb", "relu"), LayerSpec(2, 3, 3, "po2", "none"),
                                LayerSpec(1, 1, 2, "qb", "relu", 3)), 48000, fmt, "nearest")
    for extreme in (False, True):
        model = random_model(spec, seed=7, extreme=extreme)
        x = make_test_input(model, 4000, seed=3)
        assert np.array_equal(host_outputs(model, x, tmp_path / str(extreme)), evaluate(model, x))


def test_cmsis_style_bit_exact(tmp_path):
    """One arm_dot_prod_q15 call per output (real CMSIS-DSP sources)."""
    for name in ("mcu", "fpga_po2"):
        model = random_model(name, seed=5, extreme=(name == "fpga_po2"))
        x = make_test_input(model, N, seed=4)
        assert np.array_equal(host_outputs(model, x, tmp_path / name, style="cmsis"), evaluate(model, x))


def test_forced_64bit_accumulators_agree(tmp_path):
    model = random_model("mcu", seed=6)
    x = make_test_input(model, 3000, seed=5)
    assert np.array_equal(host_outputs(model, x, tmp_path, force_acc64=True), evaluate(model, x))


def _corner_model(weight: int, bias: int, taps: int, rounding: str = "floor") -> Model:
    layer = Layer(kind="qb", kernel_size=1, dilation=1, in_dim=taps, out_dim=1, activation="none",
                  weight=np.full((1, taps, 1), weight), bias=np.array([bias]))
    return Model([layer], rounding=rounding, input_dim=taps, sample_rate=48000).validate()


def test_smlad_corner_products_exact(tmp_path):
    """(-32768)*(-32768) twice in one SMLAD/SMLALD pair: the case CMSIS-DSP's portable
    __SMLALD gets wrong; the accumulator bound sits just above and below int32."""
    x = np.array([[-32768, -32768], [32767, -32768], [-32768, 32767], [0, 0], [1, -1]])
    for w, b in ((-32768, -32768), (-32768, 32767), (32767, 0), (-1, 5)):
        model = _corner_model(w, b, 2)
        y = host_outputs(model, x, tmp_path / f"{w}_{b}")
        assert np.array_equal(y, evaluate(model, x))


def test_int32_proof_boundary():
    """The 32-bit accumulator is chosen exactly when the worst case fits int32."""
    # 2 taps of |w| = 16383: 2 * 16383 * 32768 = 1,073,676,288; bias pushes it.
    fits = _corner_model(16383, 0, 2)
    assert plan_model(fits, "q412").layers[0].acc32
    big = _corner_model(-32768, 0, 4)  # 4 * 2**30 = 2**32 > int32
    lp = plan_model(big, "q412").layers[0]
    assert not lp.acc32 and lp.acc_bound > INT32_MAX


def test_check_runner_host_only(tmp_path):
    model = random_model("fpga_qb", seed=8)
    rep = check(model, "q412", samples=2000, workdir=tmp_path, arm=False, say=lambda s: None)
    assert rep.host_samples == 2000


@pytest.mark.parametrize("block", [0, 1, 3, 8])
def test_output_blocking_variants_bit_exact(block, tmp_path):
    """Every loop order the emitter can print (odd blocks split output pairs) stays exact."""
    rng = np.random.default_rng(200 + block)
    for i in range(2):
        spec = random_spec(rng, max_layers=3, max_dim=9, max_dilation=6)
        model = random_model(spec, seed=i, extreme=bool(i))
        x = make_test_input(model, 3000, seed=i)
        assert np.array_equal(host_outputs(model, x, tmp_path / str(i), block=block), evaluate(model, x))
