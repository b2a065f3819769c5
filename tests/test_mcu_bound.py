"""The proof that picks a layer's 32-bit (SMLAD) accumulator, tested at the int32 limit.

Each case builds weights whose exact accumulator reaches int32's end *exactly* (the proof must
choose 32 bits, and the wrapping SMLAD sum must still give the golden model's integers) or one step
past it (the proof must choose 64 bits).  The inputs are the ones that drive the accumulator to
that end, and the golden model's own accumulator (:func:`nnhdl.fixedpoint.accumulate`) confirms the
limit is really reached.  A property test checks the proven range against the golden model's
accumulators of random networks.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from nnhdl.configs import random_model, random_spec
from nnhdl.fixedpoint import accumulate, rounding_offset
from nnhdl.model import Layer, Model
from nnhdl.reference import evaluate, evaluate_layer, tap_history

from mcu.build import build_host, run_host
from mcu.check import make_test_input
from mcu.export import generate
from mcu.plan import INT32_MAX, INT32_MIN, plan_model

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

LO, HI = -32768, 32767


def _layer(weights: list[int], bias: int, *, kernel_size: int, in_dim: int, out_dim: int = 1,
           activation: str = "none") -> Layer:
    w = np.array(weights, dtype=np.int64).reshape(kernel_size, in_dim, out_dim)
    return Layer(kind="qb", kernel_size=kernel_size, dilation=1, in_dim=in_dim, out_dim=out_dim,
                 activation=activation, weight=w, bias=np.full(out_dim, bias, dtype=np.int64))


def _model(*layers: Layer, rounding: str = "floor") -> Model:
    return Model(list(layers), rounding=rounding, input_dim=layers[0].in_dim, sample_rate=48000).validate()


def _host(model: Model, x: np.ndarray, workdir) -> np.ndarray:
    prog = build_host(generate(model, "q412"), workdir)
    return run_host(prog, x)[0]


def _extreme_inputs(layer: Layer, lo: int, hi: int, up: bool) -> np.ndarray:
    """Samples that give the last tap window the largest (``up``) or smallest accumulator."""
    w = layer.weight[:, :, 0]
    x = np.where((w > 0) == up, hi, lo)  # [k, in]: oldest tap first, as the samples arrive
    return np.concatenate([np.zeros((2, layer.in_dim), np.int64), x, np.zeros((1, layer.in_dim), np.int64)])


def _golden_acc(model: Model, x: np.ndarray, n: int) -> np.ndarray:
    """Layer ``n``'s exact accumulators (rounding offset excluded) on ``x``: the golden model's own."""
    h = np.asarray(x, np.int64)
    for layer in model.layers[:n]:
        h = evaluate_layer(model, layer, h)
    l = model.layers[n]
    return accumulate(tap_history(h, l), l.weight, l.bias, model.qformat)


# weights [-32768, -32767, 1] on inputs [-32768, -32768, 32767] give 2**30 + (2**30 - 32768) + 32767
AT_MAX = ([-32768, -32767, 1], 0)        # largest accumulator exactly INT32_MAX
OVER_MAX = ([-32768, -32767, 0], 8)      # 2**30 + 2**30 - 32768 + 8 * 4096 = INT32_MAX + 1
AT_MIN = ([32767, 32767, 0], -16)        # -2 * 32767 * 32768 - 16 * 4096 = INT32_MIN
OVER_MIN = ([32767, 32767, 0], -17)      # INT32_MIN - 4096


@pytest.mark.parametrize("shape", ["channels", "taps"])
@pytest.mark.parametrize("case, fits, up", [(AT_MAX, True, True), (OVER_MAX, False, True),
                                             (AT_MIN, True, False), (OVER_MIN, False, False)])
def test_first_layer_at_the_int32_limit(case, fits, up, shape, tmp_path):
    weights, bias = case
    k, i = (1, 3) if shape == "channels" else (3, 1)  # three products across channels, or across a cache's taps
    model = _model(_layer(weights, bias, kernel_size=k, in_dim=i))
    lp = plan_model(model, "q412").layers[0]
    assert lp.acc32 == fits
    x = _extreme_inputs(model.layers[0], LO, HI, up)
    acc = _golden_acc(model, x, 0)
    limit = (INT32_MAX if up else INT32_MIN) + (0 if fits else (1 if up else -4096))
    assert (acc.max() if up else acc.min()) == limit  # the inputs reach the proven range's end
    assert lp.acc_range[1 if up else 0] == limit
    assert np.array_equal(_host(model, x, tmp_path), evaluate(model, x))


@pytest.mark.parametrize("bias, fits", [(8, True), (9, False)])
def test_relu_inputs_count_one_side_of_the_weights(bias, fits, tmp_path):
    """After ReLU a channel is never negative: 65,537 * 32,767 + 8 * 4,096 is exactly INT32_MAX
    (the whole-format bound would say 64 bits long before that)."""
    ident = _layer([4096 if a == b else 0 for a in range(3) for b in range(3)], 0, kernel_size=1, in_dim=3,
                   out_dim=3, activation="relu")
    second = _layer([32767, -20000, 32767, -32768, 3, -1], bias, kernel_size=2, in_dim=3)
    model = _model(ident, second)
    lp = plan_model(model, "q412").layers[1]
    assert lp.in_range == ((0, HI),) * 3
    assert lp.acc32 == fits
    x = np.concatenate([np.zeros((2, 3), np.int64), _extreme_inputs(second, LO, HI, True)])
    acc = _golden_acc(model, x, 1)
    assert acc.max() == INT32_MAX + (0 if fits else 4096) == lp.acc_range[1]
    assert np.array_equal(_host(model, x, tmp_path), evaluate(model, x))


def test_nearest_rounding_offset_is_part_of_the_sum(tmp_path):
    """With ``nearest`` the half LSB (2048) sits in the 32-bit accumulator too."""
    at = _model(_layer([-32768, -32767, 1], -1, kernel_size=1, in_dim=3), rounding="nearest")
    over = _model(_layer([-32768, -32767, 1], 0, kernel_size=1, in_dim=3), rounding="nearest")
    assert plan_model(at, "q412").layers[0].acc32
    assert plan_model(at, "q412").layers[0].acc_range[1] == INT32_MAX - 4096 + 2048
    assert not plan_model(over, "q412").layers[0].acc32
    for name, model in (("at", at), ("over", over)):
        x = np.concatenate([_extreme_inputs(model.layers[0], LO, HI, up) for up in (True, False)])
        assert np.array_equal(_host(model, x, tmp_path / name), evaluate(model, x))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), extreme=st.booleans())
def test_proven_range_holds_the_golden_accumulators(seed, extreme):
    """Soundness on random networks: every accumulator the golden model computes (on saturating,
    full-range inputs) lies in the layer's proven range, and every layer input in its channel range."""
    rng = np.random.default_rng(seed)
    model = random_model(random_spec(rng, max_layers=4, max_dim=6, max_dilation=3), seed=seed % 1000,
                         extreme=extreme)
    plan = plan_model(model, "q412")
    x = make_test_input(model, 600, seed=seed % 97)
    h = np.asarray(x, np.int64)
    for lp, layer in zip(plan.layers, model.layers):
        rng_in = np.array(lp.in_range)
        assert np.all(h >= rng_in[:, 0]) and np.all(h <= rng_in[:, 1])
        acc = accumulate(tap_history(h, layer), layer.weight, layer.bias, model.qformat)
        half = rounding_offset(model.qformat, model.rounding)  # the proven range includes it (the C adds it)
        assert lp.acc_range[0] <= acc.min() + half and acc.max() + half <= lp.acc_range[1]
        h = evaluate_layer(model, layer, h)
