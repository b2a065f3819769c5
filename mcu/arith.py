"""The two arithmetics of the C back end, each one record.

Everything that differs between the bit-exact integer path and the float32
path and is not the arithmetic's own emitter lives here as data: the C and
numpy types of a sample, how an activation row is stored, the entry point's
name, the styles, and where the emitter is (``module:function``, imported
lazily as :mod:`nnhdl.targets` does, so this module stays plain data).  The
shared C layout (:mod:`mcu.layout`), the plan, the header and the build take
the record instead of testing the name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from nnhdl.errors import NnhdlError

__all__ = ["Arithmetic", "Q412", "F32", "ARITHMETICS", "arithmetic"]


@dataclass(frozen=True)
class Arithmetic:
    """One arithmetic of the emitted C."""

    name: str
    c_type: str  # one input/output value in C
    dtype: str  # the same value in the host program's files (numpy)
    row_type: str  # one word of an activation row in C
    lanes: int  # channels per row word (two q15 channels share a uint32_t)
    value_bytes: int  # one weight or activation value in memory
    step: str  # entry point: <prefix>_<step>(const c_type *in, c_type *out)
    step_doc: str  # the header's comment on it; format fields: model
    styles: tuple[str, ...]
    emitter: str  # "module:function" -> (files, plan)
    max_width: int | None = None  # widest model format the arithmetic holds exactly
    max_width_why: str = ""

    def step_name(self, prefix: str) -> str:
        return f"{prefix}_{self.step}"

    def row_words(self, in_dim: int) -> int:
        """Words of one activation row of ``in_dim`` channels (an odd count padded with a zero channel)."""
        return -(-in_dim // self.lanes)

    def emit(self) -> Callable:
        module, _, func = self.emitter.partition(":")
        return getattr(importlib.import_module(module), func)


Q412 = Arithmetic(
    "q412", "int16_t", "<i2", "uint32_t", 2, 2, "step",
    "One inference: {model.input_dim} input mantissas ({model.qformat}) in, {model.output_dim} out; "
    "exactly the golden model's integers.",
    ("unrolled", "cmsis"), "mcu.emit_q412:emit_q412", max_width=16, max_width_why="q15/SMLAD")
F32 = Arithmetic(
    "f32", "float", "<f4", "float", 1, 4, "step_f32",
    "One inference in float32, model units (1.0 = mantissa {model.qformat.scale}).",
    ("unrolled", "cmsis"), "mcu.emit_f32:emit_f32")

ARITHMETICS: dict[str, Arithmetic] = {a.name: a for a in (Q412, F32)}


def arithmetic(name: str) -> Arithmetic:
    """The record called ``name``; a one-line error for any other (the ``--arith`` rule)."""
    try:
        return ARITHMETICS[name]
    except (KeyError, TypeError):
        raise NnhdlError(f"--arith must be {' or '.join(ARITHMETICS)}, got {name!r}") from None
