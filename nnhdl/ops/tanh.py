"""``tanh``: a table of 32 segments over [0, 4) with linear interpolation, +-1.0 beyond.

The integer function (the definition every back end meets), for a saturated mantissa ``y`` of
``QFormat(W, F)``:

* segment shift ``s = max(F - 3, 0)`` (a segment is ``2**s`` mantissa units: 1/8 when F >= 3),
  segments ``N = (4 << F) >> s`` (the table covers [0, 4));
* table ``T[i] = floor(tanh(i * 2**s / 2**F) * 2**F + 0.5)`` for ``i = 0 .. N`` and steps
  ``D[i] = T[i+1] - T[i]`` (``T`` and ``D`` for ``i < N`` are the ROM; for Q4.12, 32 x (12 + 9) bits);
* ``a = |y|`` (``2**(W-1)`` for ``min_int``: it fits W unsigned bits), ``i = a >> s``,
  ``r = a & (2**s - 1)``, ``h = 2**(s-1)`` (0 when s = 0);
* ``f = 2**F`` (1.0) when ``i >= N``, else ``f = T[i] + ((D[i] * r + h) >> s)``;
* result ``min(f, max_int)`` for ``y >= 0``, ``-f`` for ``y < 0`` (odd; ``-2**F >= min_int`` always).

Hardware: the two ROMs, one ``D x r`` multiply (at most ``(s+1) x s`` bits: 9 x 9 for Q4.12), an
add, the sign logic, in three pipeline stages after the requantise (the layer's latency grows by 3).

Error: linear interpolation of tanh over a segment of width ``h = 2**s / 2**F`` is within
``h**2 / 8 * max|tanh''|`` (``max|tanh''| = 4 / (3 sqrt 3)``), the rounded table and the rounded
interpolation add half an output LSB each, and beyond 4, ``1 - tanh(4) < 6.8e-4`` is below the
interpolation bound: ``|tanh_q(m) / 2**F - tanh(m / 2**F)| <= (1/8)**2 / 8 * 4 / (3 sqrt 3) + 2**-F``
(1.75e-3 for Q4.12, about 7 LSB) for every F >= 3; for F < 3 every mantissa has its own entry
(s = 0) and the error is at most ``2**-(F+1)`` below 4.

The float32 C (``f32``) evaluates the same 32 segments in float: ``T``, ``D`` rounded to float32,
``a = |x| * 8`` (exact), ``i = (int)a``, ``r = a - i`` (exact), ``f = fmaf(D[i], r, T[i])``
(one rounding), 1.0 from ``a >= 32``: within the interpolation bound plus ``4u``
(u = the unit roundoff) of real tanh, which is what :meth:`Tanh.f32_error` reports.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..fixedpoint import QFormat
from . import register
from .base import Activation, ActivationCost

if TYPE_CHECKING:  # pragma: no cover - type names only
    from amaranth import Module, Value

#: real-units extent of the table and segments per unit (1/8 wide)
TABLE_END = 4
SEGMENTS_PER_UNIT = 8
#: max |tanh''| = 4 / (3 sqrt 3), at atanh(1 / sqrt 3)
_TANH2_MAX = 4.0 / (3.0 * math.sqrt(3.0))
#: bound on |linear interpolation - tanh| with 1/8-wide segments
INTERPOLATION_ERROR = (1.0 / SEGMENTS_PER_UNIT) ** 2 / 8.0 * _TANH2_MAX


def segment_shift(fmt: QFormat) -> int:
    """``s``: a segment is ``2**s`` mantissa units (1/8 of 1.0 when F >= 3)."""
    return max(fmt.frac - 3, 0)


def segments(fmt: QFormat) -> int:
    """``N``: segments over [0, 4)."""
    return (TABLE_END << fmt.frac) >> segment_shift(fmt)


def table(fmt: QFormat) -> tuple[np.ndarray, np.ndarray]:
    """``(T[0..N-1], D[0..N-1])``: breakpoint values and steps, int64 mantissas (the ROM contents)."""
    s, n = segment_shift(fmt), segments(fmt)
    x = (np.arange(n + 1, dtype=np.float64) * (1 << s)) / fmt.scale
    t = np.floor(np.tanh(x) * fmt.scale + 0.5).astype(np.int64)
    return t[:-1], np.diff(t)


def error_bound(fmt: QFormat) -> float:
    """Bound on ``|tanh_q(m) / 2**F - tanh(m / 2**F)|`` over every mantissa (the docstring's)."""
    return INTERPOLATION_ERROR + 2.0 ** -fmt.frac


def _f(v: float) -> str:
    """Exact C float literal (hexadecimal)."""
    return float(np.float32(v)).hex() + "f"


def _f32_table() -> tuple[np.ndarray, np.ndarray]:
    """float32 ``T`` (33 values, the last 1.0 is never read) and ``D`` of the 1/8-wide segments."""
    n = TABLE_END * SEGMENTS_PER_UNIT
    t = np.tanh(np.arange(n + 1, dtype=np.float64) / SEGMENTS_PER_UNIT)
    return t[:-1].astype(np.float32), np.diff(t).astype(np.float32)


class Tanh(Activation):
    """Piecewise-linear tanh (see the module docstring for the exact integers)."""

    name = "tanh"
    pipeline_stages = 3

    def apply(self, y: np.ndarray, fmt: QFormat, relu_max: int | None = None) -> np.ndarray:
        y = np.asarray(y, dtype=np.int64)
        s, n = segment_shift(fmt), segments(fmt)
        t, d = table(fmt)
        a = np.abs(y)
        i = a >> s
        r = a & ((1 << s) - 1)
        half = (1 << s) >> 1
        j = np.minimum(i, n - 1)
        f = np.where(i >= n, fmt.scale, t[j] + ((d[j] * r + half) >> s))
        return np.where(y < 0, -f, np.minimum(f, fmt.max_int)).astype(np.int64)

    def apply_float(self, y: np.ndarray, fmt: QFormat, relu_max: int | None = None) -> np.ndarray:
        return np.tanh(y)

    def gates(self, m: "Module", y: "Value", en: "Value", fmt: QFormat, relu_max: int | None = None) -> "Value":
        """Three registered stages (each advancing while ``en``), so the requantise before and the
        output shift register after keep their own cycles: (1) the requantised ``y``; (2) sign,
        ``i >= N``, ``r`` and the two ROM words at ``i``; (3) ``D[i] * r + h`` (the multiply) beside
        ``T[i]``; then combinationally the add, the shift, the clip and the sign."""
        from amaranth import Array, Const, Mux, Signal, signed, unsigned

        s, n = segment_shift(fmt), segments(fmt)
        t, d = table(fmt)
        w = fmt.width
        tw, dw = max(int(t.max()).bit_length(), 1), max(int(d.max()).bit_length(), 1)
        rw = max(s, 1)
        ib = max((n - 1).bit_length(), 1)

        def reg(value, shape, name):
            r = Signal(shape, name=f"tanh_{name}")
            with m.If(en):
                m.d.sync += r.eq(value)
            return r

        y1 = reg(y, signed(w), "y")
        a = Mux(y1 < 0, -y1, y1)[:w].as_unsigned()  # |min_int| = 2**(W-1) fits W unsigned bits
        i = a[s:]
        rom_t = Array([Const(int(v), unsigned(tw)) for v in t])
        rom_d = Array([Const(int(v), unsigned(dw)) for v in d])
        neg2, sat2 = reg(y1 < 0, 1, "neg2"), reg(i >= n, 1, "sat2")
        r2 = reg(a[:s] if s else Const(0, 1), unsigned(rw), "r")
        t2 = reg(rom_t[i[:ib]], unsigned(tw), "t2")
        d2 = reg(rom_d[i[:ib]], unsigned(dw), "d")
        neg3, sat3, t3 = reg(neg2, 1, "neg3"), reg(sat2, 1, "sat3"), reg(t2, unsigned(tw), "t3")
        p3 = reg(d2 * r2 + ((1 << s) >> 1), unsigned(dw + rw + 1), "p")  # the one multiply
        f = Mux(sat3, fmt.scale, t3 + (p3 >> s))
        pos = Mux(f > fmt.max_int, fmt.max_int, f)
        return Mux(neg3, -f, pos)[:w].as_signed()

    def cost(self, fmt: QFormat) -> ActivationCost:
        s, n = segment_shift(fmt), segments(fmt)
        t, d = table(fmt)
        tw, dw = max(int(t.max()).bit_length(), 1), max(int(d.max()).bit_length(), 1)
        rom_bits = n * (tw + dw)
        w = fmt.width
        # ROM read-out: one LUT4 per 16 entries per bit, plus the 2:1 mux levels above them
        rom_lut = -(-n // 16) * (tw + dw) * 2
        # |y|, the add after the product, the saturation compare/select, the final negate-and-select
        logic = 4 * w + rom_lut
        mult = 1 if s else 0  # an (s+2) x s product: one MULT18X18D (the synthesiser may use LUTs when tiny)
        ff = w + (2 + max(s, 1) + tw + dw) + (2 + tw + dw + max(s, 1) + 1) + self.pipeline_stages  # + the valids
        return ActivationCost(lut=logic, ff=ff, rom_bits=rom_bits, mult18=mult, stages=self.pipeline_stages)

    def c_q412_low(self, fmt: QFormat) -> int:
        return fmt.min_int

    def c_q412(self, y: str, fmt: QFormat, relu_max: int | None = None) -> str:
        return f"nnhdl_tanh_q({y})"

    def c_q412_helpers(self, fmt: QFormat) -> str:
        s, n = segment_shift(fmt), segments(fmt)
        t, d = table(fmt)
        prod = "uint64_t" if 2 * s + 1 >= 32 else "uint32_t"  # D < 2**(s+1), r < 2**s
        vals = lambda a: ", ".join(str(int(v)) for v in a)  # noqa: E731
        return (f"/* tanh (nnhdl/ops/tanh.py): {n} segments of 2**{s} mantissas over [0, 4), 1.0 beyond */\n"
                f"static const int32_t nnhdl_tanh_t[{n}] = {{{vals(t)}}};\n"
                f"static const int32_t nnhdl_tanh_d[{n}] = {{{vals(d)}}};\n"
                "static inline int32_t nnhdl_tanh_q(int32_t y)\n{\n"
                "    const uint32_t a = y < 0 ? (uint32_t)0 - (uint32_t)y : (uint32_t)y;\n"
                f"    const uint32_t i = a >> {s};\n"
                f"    int32_t f = {fmt.scale};\n"
                f"    if (i < {n}u)\n"
                f"        f = nnhdl_tanh_t[i] + (int32_t)((({prod})(uint32_t)nnhdl_tanh_d[i] * (a & {(1 << s) - 1}u)"
                f" + {(1 << s) >> 1}u) >> {s});\n"
                f"    return y < 0 ? -f : (f < {fmt.max_int} ? f : {fmt.max_int});\n}}\n")

    def f32_clip(self, fmt: QFormat, relu_max: int | None = None) -> tuple[float, float] | None:
        return None

    def c_f32(self, var: str, fmt: QFormat, relu_max: int | None = None) -> list[str]:
        return [f"{var} = nnhdl_tanhf({var});"]

    def c_f32_helpers(self, fmt: QFormat) -> str:
        t, d = _f32_table()
        n = len(t)
        return (f"/* tanh (nnhdl/ops/tanh.py): {n} segments of 1/{SEGMENTS_PER_UNIT} over [0, 4), 1.0 beyond */\n"
                f"static const float nnhdl_tanhf_t[{n}] = {{{', '.join(_f(v) for v in t)}}};\n"
                f"static const float nnhdl_tanhf_d[{n}] = {{{', '.join(_f(v) for v in d)}}};\n"
                "static inline float nnhdl_tanhf(float x)\n{\n"
                f"    const float a = (x < 0.0f ? -x : x) * {_f(SEGMENTS_PER_UNIT)};\n"
                "    float f = 1.0f;\n"
                f"    if (a < {_f(n)}) {{\n"
                "        const int i = (int)a;\n"
                "        f = fmaf(nnhdl_tanhf_d[i], a - (float)i, nnhdl_tanhf_t[i]);\n"
                "    }\n"
                "    return x < 0.0f ? -f : f;\n}\n")

    def f32_emulate(self, a: np.ndarray, fmt: QFormat, relu_max: int | None = None) -> np.ndarray:
        from mcu.mirror import fma_f32  # the correctly rounded fmaf, defined once

        x = np.asarray(a, dtype=np.float32)
        t, d = _f32_table()
        n = len(t)
        s = (np.where(x < 0, -x, x) * np.float32(SEGMENTS_PER_UNIT)).astype(np.float32)
        inside = s < np.float32(n)
        i = np.where(inside, np.floor(np.where(inside, s, 0)), 0).astype(np.int64)
        r = (s - i.astype(np.float32)).astype(np.float32)
        f = np.where(inside, fma_f32(d[i], np.where(inside, r, 0), t[i]), np.float32(1.0)).astype(np.float32)
        return np.where(x < 0, -f, f).astype(np.float32)

    def f32_error(self, unit_roundoff: float) -> float:
        return INTERPOLATION_ERROR + 4.0 * unit_roundoff

    def jax(self, y: Any, fmt: QFormat, relu_max: int | None = None) -> Any:
        import jax
        import jax.numpy as jnp

        s, n = segment_shift(fmt), segments(fmt)
        t, d = table(fmt)
        m = y * fmt.scale  # exact: y is a mantissa / 2**F
        a = jnp.abs(m)
        i = jnp.floor(a / (1 << s))
        r = a - i * (1 << s)
        j = jnp.minimum(i, n - 1).astype(jnp.int32)
        tt, dd = jnp.asarray(t, y.dtype), jnp.asarray(d, y.dtype)
        f = tt[j] + jnp.floor((dd[j] * r + ((1 << s) >> 1)) / (1 << s))
        f = jnp.where(i >= n, float(fmt.scale), f)
        q = jax.lax.stop_gradient(jnp.where(m < 0, -f, jnp.minimum(f, fmt.max_int)) / fmt.scale)
        smooth = jnp.tanh(y)
        return q + (smooth - jax.lax.stop_gradient(smooth))  # forward q exactly, gradient tanh'


TANH = register(Tanh())
