"""``none``: the identity (a linear layer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..fixedpoint import QFormat
from . import register
from .base import Activation, ActivationCost

if TYPE_CHECKING:  # pragma: no cover - type names only
    from amaranth import Module, Value


class Identity(Activation):
    """The saturated output unchanged, in every back end."""

    name = "none"

    def apply(self, y: np.ndarray, fmt: QFormat, relu_max: int | None = None) -> np.ndarray:
        return np.asarray(y, dtype=np.int64)

    def apply_float(self, y: np.ndarray, fmt: QFormat, relu_max: int | None = None) -> np.ndarray:
        return y

    def gates(self, m: "Module", y: "Value", en: "Value", fmt: QFormat, relu_max: int | None = None) -> "Value":
        return y

    def cost(self, fmt: QFormat) -> ActivationCost:
        return ActivationCost()

    def c_q412_low(self, fmt: QFormat) -> int:
        return fmt.min_int

    def c_q412(self, y: str, fmt: QFormat, relu_max: int | None = None) -> str:
        return y

    def c_q412_helpers(self, fmt: QFormat) -> str:
        return ""

    def f32_clip(self, fmt: QFormat, relu_max: int | None = None) -> tuple[float, float] | None:
        return None

    def c_f32(self, var: str, fmt: QFormat, relu_max: int | None = None) -> list[str]:
        return []

    def c_f32_helpers(self, fmt: QFormat) -> str:
        return ""

    def f32_emulate(self, a: np.ndarray, fmt: QFormat, relu_max: int | None = None) -> np.ndarray:
        return np.asarray(a, dtype=np.float32)

    def f32_error(self, unit_roundoff: float) -> float:
        return 0.0

    def jax(self, y: Any, fmt: QFormat, relu_max: int | None = None) -> Any:
        return y


NONE = register(Identity())
