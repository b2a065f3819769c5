"""JAX versions of nnhdl.fixedpoint's quantisers, with straight-through gradients.

Values are carried in *model units* (``mantissa / 2**frac``) so that float32
training sees numbers near 1.  Every quantiser here reproduces the integers of
:mod:`nnhdl.fixedpoint` exactly (``tests/test_training_quantisers.py`` checks
them against it, ties and saturation included); in float64 the whole
quantised forward pass is therefore bit-exact with the golden model.

Gradients: rounding uses the straight-through estimator (identity), while
saturation and relu keep their true (zero outside the range) gradient, so the
optimiser knows when a value sits in the clipped region.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from nnhdl.fixedpoint import QFormat, quantize_po2
from nnhdl.ops import activation as op

# float64 must be available for the bit-exact checks; training asks for
# float32 explicitly wherever it wants speed.
jax.config.update("jax_enable_x64", True)

__all__ = [
    "ste",
    "quantize_qb",
    "quantize_po2_jax",
    "quantize_weight",
    "requantize_units",
    "activate_units",
    "weight_mantissas",
]


def ste(x: jax.Array, q: jax.Array) -> jax.Array:
    """Forward ``q``, backward identity in ``x``."""
    return x + jax.lax.stop_gradient(q - x)


def _qb_mantissa_float(w: jax.Array, fmt: QFormat) -> jax.Array:
    """``floor(w * 2**F + 0.5)`` clipped: QFormat.quantize as floats (exact: scale is a power of two)."""
    return jnp.clip(jnp.floor(w * fmt.scale + 0.5), fmt.min_int, fmt.max_int)


def quantize_qb(w: jax.Array, fmt: QFormat) -> jax.Array:
    """qb weight/bias quantiser in model units: round half up, saturate (STE inside the range)."""
    # Saturation keeps its real gradient (clip), rounding is straight-through.
    clipped = jnp.clip(w, fmt.min_int / fmt.scale, fmt.max_int / fmt.scale)
    return ste(clipped, _qb_mantissa_float(w, fmt) / fmt.scale)


def _po2_mantissa_float(w: jax.Array, fmt: QFormat) -> jax.Array:
    """Nearest power of two in [2**-F, 1] or 0, as fixedpoint.quantize_po2 (mantissa as float).

    ``frexp`` gives the exact binade (no log2 rounding): ``a = f * 2**e`` with
    ``f`` in [0.5, 1), so the candidates are ``2**(e-1)`` and ``2**e`` and the
    tie (0.75 * 2**e) goes up, like the numpy version.
    """
    a = jnp.abs(w)
    _, e = jnp.frexp(jnp.where(a > 0, a, 1.0))
    lo = jnp.ldexp(jnp.ones_like(a), e - 1)
    hi = lo * 2
    mag = jnp.where(a - lo < hi - a, lo, hi)
    smallest = 2.0 ** -fmt.frac
    mag = jnp.clip(mag, smallest, 1.0)
    mag = jnp.where(a < smallest / 2, 0.0, mag)
    # -1.0 always fits; where +1.0 does not (frac == width-1) the top is +0.5.
    top = fmt.scale if fmt.scale <= fmt.max_int else fmt.scale >> 1
    return jnp.clip(jnp.sign(w) * mag * fmt.scale, -fmt.scale, top)


def quantize_po2_jax(w: jax.Array, fmt: QFormat) -> jax.Array:
    """po2 weight quantiser in model units (straight-through gradient below +-2).

    The straight-through base is clipped so that ``w + (q - w)`` is exact in
    float32 (q is then within a factor of two of w, or zero).
    """
    return ste(jnp.clip(w, -2.0, 2.0), _po2_mantissa_float(w, fmt) / fmt.scale)


def quantize_weight(w: jax.Array, kind: str, fmt: QFormat) -> jax.Array:
    return quantize_po2_jax(w, fmt) if kind == "po2" else quantize_qb(w, fmt)


def requantize_units(acc: jax.Array, fmt: QFormat, rounding: str) -> jax.Array:
    """Layer accumulator (model units) -> output, as fixedpoint.requantize.

    ``acc_units * 2**F`` is the accumulator shifted right by F bits as a real
    number; floor (or floor(+0.5) for ``nearest``) then saturate.
    """
    scaled = acc * fmt.scale
    if rounding == "floor":
        m = jnp.floor(scaled)
    elif rounding == "nearest":
        m = jnp.floor(scaled + 0.5)
    else:
        raise ValueError(f"rounding must be 'floor' or 'nearest', got {rounding!r}")
    clipped = jnp.clip(acc, fmt.min_int / fmt.scale, fmt.max_int / fmt.scale)
    return ste(clipped, jnp.clip(m, fmt.min_int, fmt.max_int) / fmt.scale)


def activate_units(y: jax.Array, activation: str, relu_max: int | None, fmt: QFormat) -> jax.Array:
    """fixedpoint.activate in model units (``relu_max`` is a mantissa): the op's own JAX piece."""
    return op(activation).jax(y, fmt, relu_max)


def weight_mantissas(w: np.ndarray | jax.Array, kind: str, fmt: QFormat) -> np.ndarray:
    """Integer mantissas the JAX quantiser produces for trained float weights (for export).

    The JAX quantiser is evaluated in float64 and cross-checked against
    nnhdl.fixedpoint; a disagreement would be a bug, so it raises.
    """
    w64 = np.asarray(w, dtype=np.float64)
    f = _po2_mantissa_float if kind == "po2" else _qb_mantissa_float
    m = np.asarray(f(jnp.asarray(w64, dtype=jnp.float64), fmt)).astype(np.int64)
    expected = quantize_po2(w64, fmt) if kind == "po2" else fmt.quantize(w64)
    if not np.array_equal(m, expected):
        raise AssertionError("JAX quantiser disagrees with nnhdl.fixedpoint; this is a bug")
    return m
