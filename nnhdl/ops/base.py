"""What an activation is: one object carrying every back end's piece of it.

An :class:`Activation` works on the *saturated* layer output mantissa
(``fixedpoint.requantize``'s result) and returns the activated mantissa in the
same format.  Each back end asks the op for its piece instead of testing the
op's name, so a new activation is one module (a subclass registered in
:mod:`nnhdl.ops`) and its test.  Amaranth and JAX are imported inside the
methods that need them: the golden model and the C emitters load this
without either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..fixedpoint import QFormat

if TYPE_CHECKING:  # pragma: no cover - type names only
    from amaranth import Module, Value

__all__ = ["Activation", "ActivationCost"]


@dataclass(frozen=True)
class ActivationCost:
    """Hardware the activation adds to a layer beyond the fitted layer model of ``nnhdl.hdl.schedule``.

    ``lut``: LUT4s of logic (ROM read-out included), ``ff``: flip-flops, ``rom_bits``: constant table bits
    (held in LUTs), ``mult18``: MULT18X18D cells, ``stages``: pipeline registers it adds (cycles).
    """

    lut: int = 0
    ff: int = 0
    rom_bits: int = 0
    mult18: int = 0
    stages: int = 0


class Activation:
    """One activation function, every back end's piece of it.

    Subclasses set ``name`` and implement every method; :func:`nnhdl.ops.register` refuses one
    that leaves a piece out.  ``relu_max`` is the layer's optional clip mantissa (only ops with
    ``takes_relu_max`` accept one; the model loader enforces that).
    """

    name: ClassVar[str] = ""
    #: the layer's ``relu_max`` applies to this op
    takes_relu_max: ClassVar[bool] = False
    #: every output is >= 0 (the q412 emitter then packs two outputs without masking the low half)
    nonnegative: ClassVar[bool] = False
    #: weight initialisation gain (He: 2 for relu-like ops, 1 for the others)
    init_gain: ClassVar[float] = 1.0
    #: registers between the requantised value and the activated one in :meth:`gates` (the layer's
    #: latency grows by this many cycles; ``nnhdl.hdl.conv.layer_latency`` counts them)
    pipeline_stages: ClassVar[int] = 0

    #: the pieces every op provides (the registry checks they are overridden)
    PIECES: ClassVar[tuple[str, ...]] = (
        "apply", "apply_float", "gates", "c_q412_low", "c_q412", "c_q412_helpers",
        "f32_clip", "c_f32", "c_f32_helpers", "f32_emulate", "f32_error", "jax", "cost",
    )

    # -- integer semantics (the golden model) --------------------------------

    def apply(self, y: np.ndarray, fmt: QFormat, relu_max: int | None = None) -> np.ndarray:
        """Saturated mantissas (int64) -> activated mantissas (int64): the definition every back end meets."""
        raise NotImplementedError

    def apply_float(self, y: np.ndarray, fmt: QFormat, relu_max: int | None = None) -> np.ndarray:
        """The ideal real function (float64 model units) that ``nnhdl.reference.evaluate_float`` uses.

        Must be monotone non-decreasing and 1-Lipschitz: the float error bound relies on it.
        """
        raise NotImplementedError

    # -- hardware -------------------------------------------------------------

    def gates(self, m: "Module", y: "Value", en: "Value", fmt: QFormat, relu_max: int | None = None) -> "Value":
        """Amaranth: the saturated W-bit signed mantissa ``y`` -> the activated one, ``pipeline_stages``
        cycles later.  Registers the op adds to ``m`` advance only while ``en`` is high (the layer's
        output path stalls them with the rest of the beat); 0 stages: purely combinational."""
        raise NotImplementedError

    def cost(self, fmt: QFormat) -> ActivationCost:
        """What :meth:`gates` adds to a layer (per layer: the activation is shared by its outputs)."""
        raise NotImplementedError

    # -- C, integer (q412) ------------------------------------------------------

    def c_q412_low(self, fmt: QFormat) -> int:
        """The lower bound the emitter fuses into its saturation (``min_int``, or 0 for relu's USAT)."""
        raise NotImplementedError

    def c_q412(self, y: str, fmt: QFormat, relu_max: int | None = None) -> str:
        """C expression of the activated int32 mantissa from ``y``, already saturated to [low, max_int]."""
        raise NotImplementedError

    def c_q412_helpers(self, fmt: QFormat) -> str:
        """C text (static tables, static inline functions) :meth:`c_q412` needs, once per file."""
        raise NotImplementedError

    # -- C, float32 ---------------------------------------------------------------

    def f32_clip(self, fmt: QFormat, relu_max: int | None = None) -> tuple[float, float] | None:
        """``(lo, hi)`` when the op is a clip (``arm_clip_f32`` in the cmsis style), else None."""
        raise NotImplementedError

    def c_f32(self, var: str, fmt: QFormat, relu_max: int | None = None) -> list[str]:
        """C statements applying the op in place to the float variable ``var``."""
        raise NotImplementedError

    def c_f32_helpers(self, fmt: QFormat) -> str:
        """C text :meth:`c_f32` needs, once per file."""
        raise NotImplementedError

    def f32_emulate(self, a: np.ndarray, fmt: QFormat, relu_max: int | None = None) -> np.ndarray:
        """:meth:`c_f32` in numpy float32, bit for bit (``mcu.mirror.emulate_unrolled_f32`` uses it)."""
        raise NotImplementedError

    def f32_error(self, unit_roundoff: float) -> float:
        """Bound on ``|c_f32(x) - apply_float(x)|`` for a float x at that unit roundoff (0: exact)."""
        raise NotImplementedError

    # -- JAX ------------------------------------------------------------------------

    def jax(self, y: Any, fmt: QFormat, relu_max: int | None = None) -> Any:
        """Quantised forward in model units (``y`` = mantissa / 2**F as a JAX array); forward values
        equal :meth:`apply` exactly in float64, gradients straight-through where the integers step."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<activation {self.name}>"
