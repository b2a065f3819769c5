"""The fixed-point arithmetic of nnhdl: the one place where DESIGN §1 lives.

Every back end (golden model, Amaranth generators, C emitter, training
quantisers) calls into this module instead of restating a rule, so that the
integers they compute cannot drift apart.

All values are integer *mantissas* ``m`` meaning ``m / 2**frac``.  Arrays are
numpy ``int64`` wherever arithmetic happens; for every format nnhdl supports
(width <= 24) and every layer shape it accepts, int64 holds the exact
accumulator (see :func:`accumulator_width`), so nothing ever wraps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "QFormat",
    "Q4_12",
    "ROUNDINGS",
    "MAX_WIDTH",
    "MIN_WIDTH",
    "accumulate",
    "accumulator_width",
    "accumulator_bound",
    "requantize",
    "rounding_offset",
    "activate",
    "po2_encode",
    "po2_decode",
    "is_po2",
    "po2_product",
    "quantize_po2",
]

Rounding = Literal["floor", "nearest"]

ROUNDINGS: tuple[str, ...] = ("floor", "nearest")
MIN_WIDTH = 2
MAX_WIDTH = 24
# Largest accumulator int64 can hold exactly (one bit for the sign).
_INT64_BITS = 63
# Signed width up to which float64 holds every integer (and partial sum) exactly.
_FLOAT64_EXACT_BITS = 53


@dataclass(frozen=True)
class QFormat:
    """A signed two's complement fixed-point format Q(width-frac).(frac).

    ``QFormat(16, 12)`` is Q4.12: 16-bit mantissas, 12 fractional bits.
    """

    width: int = 16
    frac: int = 12

    def __post_init__(self) -> None:
        if not isinstance(self.width, int) or not MIN_WIDTH <= self.width <= MAX_WIDTH:
            raise ValueError(
                f"fixed-point width must be an integer in {MIN_WIDTH}..{MAX_WIDTH}, got {self.width!r}"
            )
        if not isinstance(self.frac, int) or not 0 <= self.frac < self.width:
            raise ValueError(
                f"fractional bits must be an integer in 0..{self.width - 1} for width {self.width}, "
                f"got {self.frac!r}"
            )

    @property
    def int_bits(self) -> int:
        """Integer bits including the sign bit (the 4 of Q4.12)."""
        return self.width - self.frac

    @property
    def min_int(self) -> int:
        return -(1 << (self.width - 1))

    @property
    def max_int(self) -> int:
        return (1 << (self.width - 1)) - 1

    @property
    def scale(self) -> int:
        """Mantissa of 1.0 (may itself be unrepresentable, e.g. in Q1.15)."""
        return 1 << self.frac

    @property
    def min_value(self) -> float:
        return self.min_int / self.scale

    @property
    def max_value(self) -> float:
        return self.max_int / self.scale

    def __str__(self) -> str:
        return f"Q{self.int_bits}.{self.frac}"

    # -- conversions -------------------------------------------------------

    def saturate(self, m: np.ndarray | int) -> np.ndarray:
        """Clamp integers into the representable mantissa range."""
        return np.clip(np.asarray(m, dtype=np.int64), self.min_int, self.max_int)

    def fits(self, m: np.ndarray | int) -> bool:
        """True when every value is an integer mantissa of this format."""
        a = np.asarray(m)
        if a.size == 0:
            return True
        return bool(a.min() >= self.min_int and a.max() <= self.max_int)

    def quantize(self, x: np.ndarray | float) -> np.ndarray:
        """Float (model units) -> mantissa: round half up, then saturate.

        ``floor(x * 2**frac + 0.5)`` is used rather than numpy's
        half-to-even so that every framework (numpy, JAX, C) can reproduce it
        with one floor.
        """
        scaled = np.floor(np.asarray(x, dtype=np.float64) * self.scale + 0.5)
        scaled = np.clip(scaled, self.min_int, self.max_int)
        return scaled.astype(np.int64)

    def to_float(self, m: np.ndarray | int) -> np.ndarray:
        """Mantissa -> float64 model units (exact for width <= 24)."""
        return np.asarray(m, dtype=np.float64) / self.scale


Q4_12 = QFormat(16, 12)


# -- accumulation ---------------------------------------------------------


def accumulator_bound(fmt: QFormat, n_terms: int) -> int:
    """Largest |accumulator| for ``n_terms`` products plus one bias.

    The worst product is ``min_int * min_int = 2**(2W-2)``; the bias enters
    shifted left by ``frac``.
    """
    if n_terms < 0:
        raise ValueError("n_terms must be >= 0")
    product = 1 << (2 * fmt.width - 2)
    bias = (1 << (fmt.width - 1)) << fmt.frac
    return n_terms * product + bias


def accumulator_width(fmt: QFormat, n_terms: int) -> int:
    """Signed bits that hold every possible sum exactly (no wrap-around).

    Hardware sizes its accumulators with this; it is also the proof that the
    int64 arithmetic of the golden model never wraps.
    """
    return accumulator_bound(fmt, n_terms).bit_length() + 1


def check_accumulator_fits_int64(fmt: QFormat, n_terms: int) -> None:
    """Refuse shapes whose exact sum would not fit int64."""
    if accumulator_width(fmt, n_terms) > _INT64_BITS + 1:
        raise ValueError(
            f"{n_terms} products of {fmt} need a {accumulator_width(fmt, n_terms)}-bit "
            "accumulator; nnhdl supports at most 64 bits"
        )


def accumulate(taps: np.ndarray, weight: np.ndarray, bias: np.ndarray, fmt: QFormat) -> np.ndarray:
    """Exact accumulator ``sum_k sum_i taps[..., k, i] * weight[k, i, o] + (bias[o] << frac)``.

    ``taps`` has shape ``[..., K, in_dim]`` (k = 0 oldest), ``weight``
    ``[K, in_dim, out_dim]``, ``bias`` ``[out_dim]``.  Returns int64
    ``[..., out_dim]`` in the 2*frac fractional-bit domain.
    """
    taps = np.asarray(taps, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.int64)
    bias = np.asarray(bias, dtype=np.int64)
    k, i, o = weight.shape
    flat = taps.reshape(*taps.shape[:-2], k * i)
    if accumulator_width(fmt, k * i) <= _FLOAT64_EXACT_BITS:
        # Every partial sum, in any order, is an integer below 2**53 in
        # magnitude, so float64 (BLAS, ~30x faster than int64 matmul) is exact.
        acc = (flat.astype(np.float64) @ weight.reshape(k * i, o).astype(np.float64)).astype(np.int64)
    else:
        acc = flat @ weight.reshape(k * i, o)
    return acc + (bias << fmt.frac)


def rounding_offset(fmt: QFormat, rounding: Rounding) -> int:
    """What requantisation adds to the accumulator before the floor shift.

    ``floor``: 0; ``nearest``: half an output LSB, ``2**(frac-1)``.  Back ends
    that fold it into the bias (C) or add it in gates (HDL) take it from here.
    """
    if rounding == "floor":
        return 0
    if rounding == "nearest":
        return (1 << (fmt.frac - 1)) if fmt.frac > 0 else 0
    raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")


def requantize(acc: np.ndarray, fmt: QFormat, rounding: Rounding = "floor") -> np.ndarray:
    """Accumulator (2*frac fractional bits) -> layer output mantissa.

    ``floor``: arithmetic shift right by ``frac`` (identical to clip-then-take
    bits ``[2F+I-1:F]``). ``nearest``: ``floor((acc + 2**(frac-1)) / 2**frac)``.
    Then saturate to the format.
    """
    acc = np.asarray(acc, dtype=np.int64)
    return fmt.saturate((acc + rounding_offset(fmt, rounding)) >> fmt.frac)


def activate(y: np.ndarray, activation: str, relu_max: int | None = None, fmt: QFormat = Q4_12) -> np.ndarray:
    """Apply the activation to saturated mantissas of ``fmt`` (``relu_max`` is a mantissa).

    The functions themselves live in :mod:`nnhdl.ops` (one module per activation, built from this
    module's helpers); this is the name-based entry the golden model calls.
    """
    from .ops import activation as op  # the ops import this module: look them up on first use

    return op(activation).apply(np.asarray(y, dtype=np.int64), fmt, relu_max)


# -- power-of-two weights -------------------------------------------------
#
# A po2 weight is w = s * 2**-k (s = +-1, 0 <= k <= frac) or 0.  Its mantissa
# is s * 2**(frac - k).  In the product domain x * w == s * (x << (frac - k)).


def is_po2(m: np.ndarray, fmt: QFormat) -> np.ndarray:
    """Elementwise: is the mantissa 0 or +-2**(frac-k) with 0 <= k <= frac?"""
    a = np.abs(np.asarray(m, dtype=np.int64))
    power = (a & (a - 1)) == 0  # 0 or a power of two
    return power & (a <= fmt.scale) & (a <= fmt.max_int + 1) & (
        np.asarray(m, dtype=np.int64) <= fmt.max_int
    )


def po2_encode(m: np.ndarray, fmt: QFormat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mantissas -> (sign, shift, zero).

    ``sign`` is -1/+1, ``shift`` is ``frac - k`` (the left shift applied to
    x in the product domain), ``zero`` marks zero weights (sign=+1, shift=0
    there).  Raises ValueError if a value is not a po2 mantissa.
    """
    m = np.asarray(m, dtype=np.int64)
    if not np.all(is_po2(m, fmt)):
        bad = m[~is_po2(m, fmt)].ravel()[0]
        raise ValueError(f"{bad} is not a power-of-two weight mantissa of {fmt}")
    zero = m == 0
    sign = np.where(m < 0, -1, 1).astype(np.int64)
    a = np.where(zero, 1, np.abs(m))
    shift = np.round(np.log2(a)).astype(np.int64)
    shift = np.where(zero, 0, shift)
    return sign, shift, zero


def po2_decode(sign: np.ndarray, shift: np.ndarray, zero: np.ndarray) -> np.ndarray:
    """(sign, shift, zero) -> mantissas ``sign * 2**shift`` (0 where zero)."""
    sign = np.asarray(sign, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    return np.where(np.asarray(zero, dtype=bool), 0, sign * (np.int64(1) << shift))


def po2_product(x: np.ndarray, sign: np.ndarray, shift: np.ndarray, zero: np.ndarray) -> np.ndarray:
    """``x * w`` for a po2 weight using only a shift and a negation."""
    x = np.asarray(x, dtype=np.int64)
    shifted = x << np.asarray(shift, dtype=np.int64)
    return np.where(np.asarray(zero, dtype=bool), 0, np.where(np.asarray(sign) < 0, -shifted, shifted))


def quantize_po2(x: np.ndarray | float, fmt: QFormat) -> np.ndarray:
    """Float weights -> nearest po2 mantissa in {0} U {+-2**-k : 0 <= k <= frac}.

    "Nearest" is linear: between 2**-(j+1) and 2**-j the midpoint is
    0.75 * 2**-j; below half the smallest power the weight becomes 0; above
    1.0 it saturates to +-1.0 (clipped further if 1.0 is unrepresentable).
    """
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    smallest = 2.0 ** -fmt.frac
    # candidate exponent below and above
    with np.errstate(divide="ignore"):
        e = np.floor(np.log2(np.where(a > 0, a, 1.0)))
    lo = 2.0 ** e
    hi = 2.0 ** (e + 1)
    mag = np.where(a - lo < hi - a, lo, hi)
    mag = np.clip(mag, smallest, 1.0)
    mag = np.where(a < smallest / 2, 0.0, mag)
    m = np.sign(x) * mag * fmt.scale
    m = m.astype(np.int64)
    # -1.0 always fits; where +1.0 does not (frac == width-1) the largest
    # positive weight is +0.5.
    top = fmt.scale if fmt.scale <= fmt.max_int else fmt.scale >> 1
    return np.clip(m, -fmt.scale, top)
