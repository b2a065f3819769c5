"""``relu``: ``max(y, 0)`` after saturation, optionally ``min(., relu_max)`` (DESIGN §1)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..fixedpoint import QFormat
from . import register
from .base import Activation, ActivationCost

if TYPE_CHECKING:  # pragma: no cover - type names only
    from amaranth import Module, Value

#: the largest float32 (the cmsis style's upper clip when there is no relu_max)
_FLOAT32_MAX = float(np.float32(3.4028234663852886e38))


def _f(v: float) -> str:
    """Exact C float literal (hexadecimal)."""
    return float(np.float32(v)).hex() + "f"


class Relu(Activation):
    """Rectifier with an optional upper clip (a mantissa)."""

    name = "relu"
    takes_relu_max = True
    nonnegative = True
    init_gain = 2.0

    def apply(self, y: np.ndarray, fmt: QFormat, relu_max: int | None = None) -> np.ndarray:
        y = np.maximum(np.asarray(y, dtype=np.int64), 0)
        return y if relu_max is None else np.minimum(y, relu_max)

    def apply_float(self, y: np.ndarray, fmt: QFormat, relu_max: int | None = None) -> np.ndarray:
        y = np.maximum(y, 0.0)
        return y if relu_max is None else np.minimum(y, relu_max / fmt.scale)

    def gates(self, m: "Module", y: "Value", en: "Value", fmt: QFormat, relu_max: int | None = None) -> "Value":
        from amaranth import Mux

        y = Mux(y < 0, 0, y)
        if relu_max is not None:
            y = Mux(y > relu_max, relu_max, y)
        return y[:fmt.width].as_signed()

    def cost(self, fmt: QFormat) -> ActivationCost:
        # the compare-and-select is part of the requantise logic the fitted layer model already counts
        return ActivationCost()

    def c_q412_low(self, fmt: QFormat) -> int:
        return 0

    def c_q412(self, y: str, fmt: QFormat, relu_max: int | None = None) -> str:
        return y if relu_max is None else f"nnhdl_min({y}, {int(relu_max)})"

    def c_q412_helpers(self, fmt: QFormat) -> str:
        return ""  # nnhdl_min is part of every q412 file

    def f32_clip(self, fmt: QFormat, relu_max: int | None = None) -> tuple[float, float] | None:
        return 0.0, (_FLOAT32_MAX if relu_max is None else relu_max / fmt.scale)

    def c_f32(self, var: str, fmt: QFormat, relu_max: int | None = None) -> list[str]:
        out = [f"{var} = {var} > 0.0f ? {var} : 0.0f;"]
        if relu_max is not None:
            hi = _f(relu_max / fmt.scale)
            out.append(f"{var} = {var} < {hi} ? {var} : {hi};")
        return out

    def c_f32_helpers(self, fmt: QFormat) -> str:
        return ""

    def f32_emulate(self, a: np.ndarray, fmt: QFormat, relu_max: int | None = None) -> np.ndarray:
        a = np.asarray(a, dtype=np.float32)
        a = np.where(a > 0, a, np.float32(0))
        if relu_max is not None:
            hi = np.float32(relu_max / fmt.scale)
            a = np.where(a < hi, a, hi)
        return a.astype(np.float32)

    def f32_error(self, unit_roundoff: float) -> float:
        return 0.0  # compares and selects: exact

    def jax(self, y: Any, fmt: QFormat, relu_max: int | None = None) -> Any:
        import jax.numpy as jnp

        y = jnp.maximum(y, 0.0)
        return y if relu_max is None else jnp.minimum(y, relu_max / fmt.scale)


RELU = register(Relu())
