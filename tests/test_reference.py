"""The golden model: whole-sequence == streaming, and both == an independent
implementation built on fxpmath (the original project's reference library)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from fxpmath import Fxp

from nnhdl.configs import REFERENCE, LayerSpec, NetworkSpec, random_model, random_spec
from nnhdl.fixedpoint import QFormat
from nnhdl.model import Model
from nnhdl.reference import StreamingModel, evaluate, evaluate_float


def _random_input(model: Model, t: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(model.qformat.min_int, model.qformat.max_int + 1, size=(t, model.input_dim))


# -- an independent oracle on fxpmath -----------------------------------------


def _fxp(raw: np.ndarray | int, width: int, frac: int) -> Fxp:
    return Fxp(raw, signed=True, n_word=width, n_frac=frac, raw=True, rounding="floor", overflow="saturate")


def fxpmath_layer(x: np.ndarray, model: Model, n: int) -> np.ndarray:
    """One layer with fxpmath: exact products, wide sum, resize with floor + saturation.

    Written from DESIGN §1/§2 without nnhdl.fixedpoint, so the two can
    disagree.  fxpmath must be told rounding='floor' (its default 'trunc'
    rounds toward zero, the original project's one-LSB discrepancy).
    """
    layer = model.layers[n]
    fmt = model.qformat
    f = fmt.frac
    k_size, d = layer.kernel_size, layer.dilation
    out = np.zeros((x.shape[0], layer.out_dim), dtype=np.int64)
    wide = 2 * fmt.width + 16  # more than enough for K*in_dim <= 2**16 terms
    for t in range(x.shape[0]):
        for o in range(layer.out_dim):
            acc = _fxp(int(layer.bias[o]) << f, wide, 2 * f)
            for k in range(k_size):
                src = t - (k_size - 1 - k) * d
                if src < 0:
                    continue
                xs = _fxp(x[src], fmt.width, f)
                ws = _fxp(layer.weight[k, :, o], fmt.width, f)
                products = xs * ws  # exact: 2W bits, 2F fractional bits
                for p in np.atleast_1d(products.val):
                    acc = _fxp(int(acc.val) + int(p), wide, 2 * f)
            raw = int(acc.val)
            if model.rounding == "nearest" and f > 0:
                raw += 1 << (f - 1)
            y = Fxp(None, signed=True, n_word=fmt.width, n_frac=f, rounding="floor", overflow="saturate")
            y.set_val(raw / 2 ** (2 * f))  # exact: |raw| < 2**53 for the sizes used here
            v = int(y.val)
            if layer.activation == "relu":
                v = max(v, 0)
                if layer.relu_max is not None:
                    v = min(v, layer.relu_max)
            out[t, o] = v
    return out


def fxpmath_network(model: Model, x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in range(len(model.layers)):
            x = fxpmath_layer(x, model, n)
    return x


@pytest.mark.parametrize("seed", range(6))
def test_golden_matches_fxpmath_on_random_layers(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    fmt = [QFormat(16, 12), QFormat(12, 9), QFormat(16, 8)][seed % 3]
    spec = random_spec(rng, max_layers=2, max_dim=5, max_dilation=3, qformat=fmt)
    model = random_model(spec, seed=seed, extreme=seed % 2 == 1)
    x = _random_input(model, 24, seed)
    assert np.array_equal(evaluate(model, x), fxpmath_network(model, x))


@pytest.mark.parametrize("kind", ["qb", "po2"])
@pytest.mark.parametrize("rounding", ["floor", "nearest"])
def test_golden_matches_fxpmath_per_kind(kind: str, rounding: str) -> None:
    spec = NetworkSpec("t", 3, (LayerSpec(3, 2, 5, kind, "relu"), LayerSpec(2, 1, 2, kind, "none")), rounding=rounding)
    for extreme in (False, True):
        model = random_model(spec, seed=7, extreme=extreme, scale=4.0)
        x = _random_input(model, 30, 1)
        assert np.array_equal(evaluate(model, x), fxpmath_network(model, x))


# -- whole sequence == streaming ------------------------------------------------


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_streaming_equals_whole_sequence_reference_configs(name: str) -> None:
    model = random_model(name, seed=3)
    x = _random_input(model, 2000, 0)
    assert np.array_equal(StreamingModel(model).run(x), evaluate(model, x))


@pytest.mark.parametrize("seed", range(25))
def test_streaming_equals_whole_sequence_random_networks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    fmt = QFormat(int(rng.integers(4, 25)), 0)
    fmt = QFormat(fmt.width, int(rng.integers(0, fmt.width)))
    model = random_model(random_spec(rng, qformat=fmt), seed=seed, extreme=bool(seed % 3 == 0))
    x = _random_input(model, 600, seed)
    whole = evaluate(model, x)
    assert np.array_equal(StreamingModel(model).run(x), whole)
    assert np.array_equal(evaluate(model, x, chunk=97), whole)


def test_streaming_reset_restores_zero_history() -> None:
    model = random_model("mcu", seed=5)
    x = _random_input(model, 400, 2)
    s = StreamingModel(model)
    s.run(x[:300])
    s.reset()
    assert np.array_equal(s.run(x[300:]), evaluate(model, x[300:]))


def test_outputs_depend_only_on_the_receptive_field() -> None:
    model = random_model("fpga_qb", seed=1)
    x = _random_input(model, 300, 3)
    y = x.copy()
    cut = 200
    y[: cut - model.receptive_field + 1] = 0  # history older than the receptive field
    assert np.array_equal(evaluate(model, x)[cut:], evaluate(model, y)[cut:])


def test_float_model_tracks_the_integers_on_small_signals() -> None:
    # Quantisation error per layer is below 1 LSB (floor) plus propagation; on
    # signals far from saturation the float network stays within a few LSB.
    model = random_model("fpga_qb", seed=2, scale=0.5)
    rng = np.random.default_rng(4)
    x_int = rng.integers(-2048, 2048, size=(500, 4))
    ints = evaluate(model, x_int)
    floats = evaluate_float(model, x_int / model.qformat.scale)
    assert np.max(np.abs(ints / model.qformat.scale - floats)) < 64 / model.qformat.scale


def test_reference_configurations_match_the_design_table() -> None:
    params = {name: random_model(name).params for name in REFERENCE}
    assert params == {"fpga_qb": 1572, "fpga_po2": 1092, "mcu": 465}
    assert random_model("mcu").receptive_field == 1 + 3 * (1 + 4 + 16 + 64)
