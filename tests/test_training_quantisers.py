"""The JAX quantisers reproduce nnhdl.fixedpoint's integers exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnhdl.fixedpoint import QFormat, activate, quantize_po2, requantize
from training.quantisers import (activate_units, quantize_po2_jax, quantize_qb, requantize_units,
                                 weight_mantissas)

FORMATS = [QFormat(16, 12), QFormat(16, 15), QFormat(8, 4), QFormat(12, 0), QFormat(24, 20), QFormat(10, 9)]


def _special_floats(fmt: QFormat, rng: np.random.Generator) -> np.ndarray:
    """Random values plus ties, range edges, powers of two and their midpoints."""
    m = rng.integers(fmt.min_int - 5, fmt.max_int + 5, size=400)
    ties = (m + 0.5) / fmt.scale
    exact = m / fmt.scale
    pow2 = np.array([2.0 ** -k for k in range(-3, fmt.frac + 4)])
    mids = 0.75 * pow2
    near = np.concatenate([pow2 * (1 + 1e-9), pow2 * (1 - 1e-9), mids * (1 + 1e-9), mids * (1 - 1e-9)])
    rand = rng.normal(0, 2.0 ** (fmt.int_bits - 1), size=400)
    logu = np.exp(rng.uniform(np.log(2.0 ** -(fmt.frac + 3)), np.log(4.0), size=400))
    v = np.concatenate([ties, exact, pow2, mids, near, rand, logu, [0.0, 1e-30, 1e9, fmt.max_value, fmt.min_value]])
    return np.concatenate([v, -v])


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_qb_weights_match_fixedpoint(fmt):
    v = _special_floats(fmt, np.random.default_rng(1))
    got = np.asarray(quantize_qb(jnp.asarray(v, jnp.float64), fmt)) * fmt.scale
    assert np.array_equal(got, fmt.quantize(v).astype(np.float64))


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_po2_weights_match_fixedpoint(fmt):
    v = _special_floats(fmt, np.random.default_rng(2))
    got = np.asarray(quantize_po2_jax(jnp.asarray(v, jnp.float64), fmt)) * fmt.scale
    assert np.array_equal(got, quantize_po2(v, fmt).astype(np.float64))


def test_float32_training_weights_quantise_like_float64():
    """Training keeps float32 parameters; their quantisation must not differ from the exported one."""
    fmt = QFormat(16, 12)
    v32 = _special_floats(fmt, np.random.default_rng(3)).astype(np.float32)
    v32 = v32[np.isfinite(v32)]
    got_qb = np.asarray(quantize_qb(jnp.asarray(v32), fmt)).astype(np.float64) * fmt.scale
    got_po2 = np.asarray(quantize_po2_jax(jnp.asarray(v32), fmt)).astype(np.float64) * fmt.scale
    assert np.array_equal(got_qb, fmt.quantize(v32.astype(np.float64)))
    assert np.array_equal(got_po2, quantize_po2(v32.astype(np.float64), fmt))


@pytest.mark.parametrize("kind", ["qb", "po2"])
def test_export_mantissas_are_the_quantisers_output(kind):
    fmt = QFormat(16, 12)
    w = np.random.default_rng(4).normal(0, 0.5, size=(4, 3, 5))
    m = weight_mantissas(w, kind, fmt)
    q = quantize_qb(jnp.asarray(w), fmt) if kind == "qb" else quantize_po2_jax(jnp.asarray(w), fmt)
    assert m.dtype == np.int64
    assert np.array_equal(m, np.asarray(q) * fmt.scale)


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@pytest.mark.parametrize("rounding", ["floor", "nearest"])
def test_requantize_matches_fixedpoint(fmt, rounding):
    rng = np.random.default_rng(5)
    lim = 1 << (2 * fmt.width + 4)
    acc = np.concatenate([rng.integers(-lim, lim, size=3000),
                          np.arange(-3 * fmt.scale, 3 * fmt.scale + 1, max(1, fmt.scale // 64)),
                          [fmt.max_int << fmt.frac, (fmt.max_int + 1) << fmt.frac, fmt.min_int << fmt.frac,
                           (fmt.min_int << fmt.frac) - 1]])
    units = jnp.asarray(acc.astype(np.float64) / (1 << (2 * fmt.frac)), jnp.float64)
    got = np.asarray(requantize_units(units, fmt, rounding)) * fmt.scale
    assert np.array_equal(got, requantize(acc, fmt, rounding).astype(np.float64))


@given(st.lists(st.integers(-(1 << 15), (1 << 15) - 1), min_size=1, max_size=50),
       st.one_of(st.none(), st.integers(0, (1 << 15) - 1)), st.sampled_from(["relu", "none"]))
@settings(max_examples=60, deadline=None)
def test_activation_matches_fixedpoint(ms, relu_max, activation):
    fmt = QFormat(16, 12)
    relu_max = relu_max if activation == "relu" else None
    y = np.asarray(ms)
    got = np.asarray(activate_units(jnp.asarray(y / fmt.scale, jnp.float64), activation, relu_max, fmt)) * fmt.scale
    assert np.array_equal(got, activate(y, activation, relu_max).astype(np.float64))


def test_straight_through_gradients():
    """Rounding passes gradients through; saturation stops them (so training sees the clip)."""
    fmt = QFormat(16, 12)
    w = jnp.asarray([0.3, -2.2, 9.0, -9.0], jnp.float64)
    g = jax.grad(lambda w: jnp.sum(quantize_qb(w, fmt)))(w)
    assert np.array_equal(np.asarray(g), [1.0, 1.0, 0.0, 0.0])
    g = jax.grad(lambda w: jnp.sum(quantize_po2_jax(w, fmt)))(w)
    assert np.array_equal(np.asarray(g), [1.0, 0.0, 0.0, 0.0])
    g = jax.grad(lambda a: jnp.sum(requantize_units(a, fmt, "floor")))(w)
    assert np.array_equal(np.asarray(g), [1.0, 1.0, 0.0, 0.0])
