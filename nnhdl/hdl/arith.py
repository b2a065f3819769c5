"""Arithmetic building blocks as Amaranth expressions.

These mirror :mod:`nnhdl.fixedpoint` (requantize, activate, po2 products)
and a constant multiplication built from adders only, so that the
weight-write address decoder never infers a hardware multiplier.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Value, signed, unsigned
from amaranth.lib import data

from ..fixedpoint import QFormat, rounding_offset
from ..ops import activation as op

__all__ = ["po2_layout", "requantize", "activate", "po2_product", "po2_encode", "const_mul",
           "bits_for"]


def bits_for(n: int) -> int:
    """Unsigned bits that hold every value in ``0..n`` (at least 1)."""
    return max(1, int(n).bit_length())


def po2_layout(fmt: QFormat) -> data.StructLayout:
    """A stored po2 weight: negative flag, left shift (``frac - k``), zero flag."""
    return data.StructLayout({"neg": 1, "shift": unsigned(bits_for(fmt.frac)), "zero": 1})


def requantize(acc: Value, fmt: QFormat, rounding: str) -> Value:
    """``fixedpoint.requantize`` in gates: shift right by frac (floor or nearest), then saturate."""
    half = rounding_offset(fmt, rounding)
    shifted = (acc + half) >> fmt.frac if half else acc >> fmt.frac
    return Mux(shifted > fmt.max_int, Const(fmt.max_int, signed(fmt.width)),
               Mux(shifted < fmt.min_int, Const(fmt.min_int, signed(fmt.width)), shifted[:fmt.width].as_signed()))


def activate(m: Module, y: Value, en: Value, fmt: QFormat, activation: str, relu_max: int | None) -> Value:
    """``fixedpoint.activate`` in gates (on an already saturated mantissa): the op's own piece, its
    ``pipeline_stages`` registers (if any) added to ``m`` and advancing while ``en``."""
    return op(activation).gates(m, y, en, fmt, relu_max)


def po2_product(x: Value, w: data.View, fmt: QFormat) -> Value:
    """``x * w`` for a po2 weight: a shift and a negation, no multiplier (2W-bit result)."""
    shifted = (x.as_signed() << w.shift)
    res = Mux(w.zero, 0, Mux(w.neg, -shifted, shifted))
    return res[:2 * fmt.width].as_signed()


def po2_encode(m: Value, fmt: QFormat) -> Value:
    """Mantissa (a valid po2 value) -> packed :func:`po2_layout` bits, with a priority encoder.

    Used on the weight-write path so the runtime port takes plain mantissas,
    exactly as :func:`nnhdl.fixedpoint.po2_encode` defines the code.
    """
    m = m.as_signed()
    mag = Mux(m < 0, -m, m)[:fmt.width].as_unsigned()  # |min_int| fits W unsigned bits
    shift = Const(0, unsigned(bits_for(fmt.frac)))
    for b in range(fmt.frac + 1):  # last match wins = highest set bit
        shift = Mux(mag[b], b, shift)
    return Cat(m < 0, shift, m == 0)


def const_mul(value: Value, factor: int) -> Value:
    """``value * factor`` for a constant, as a sum of shifts (no ``$mul`` cell)."""
    terms = [value.as_unsigned() << b for b in range(factor.bit_length()) if (factor >> b) & 1]
    if not terms:
        return Const(0, 1)
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out
