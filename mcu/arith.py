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

import numpy as np

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
    # the test programs (mcu.harness, mcu.build): values in and out of C
    test_symbol: str  # the firmware's test input array
    c_literals: Callable[[np.ndarray], list[str]]  # exact C literals of input values
    out_word: str  # C expression: out[o] as the uint32_t the firmware prints ...
    out_conv: str  # ... after these statements
    from_words: Callable[[np.ndarray], np.ndarray]  # printed uint32 words -> output values
    from_host: Callable[[np.ndarray], np.ndarray]  # the host program's output values -> results
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


def _int_literals(x: np.ndarray) -> list[str]:
    return [str(int(v)) for v in x.reshape(-1)]


def _float_literals(x: np.ndarray) -> list[str]:
    """Hexadecimal float literals: exact, no decimal round trip."""
    return [float(v).hex() + "f" for v in np.asarray(x, dtype=np.float32).reshape(-1)]


def _int16_words(words: np.ndarray) -> np.ndarray:
    out = words.astype(np.int64)
    return np.where(out >= 0x8000, out - 0x10000, out)


def _float_words(words: np.ndarray) -> np.ndarray:
    return words.view(np.float32)


Q412 = Arithmetic(
    "q412", "int16_t", "<i2", "uint32_t", 2, 2, "step",
    "One inference: {model.input_dim} input mantissas ({model.qformat}) in, {model.output_dim} out; "
    "exactly the golden model's integers.",
    ("unrolled", "cmsis"), "mcu.emit_q412:emit_q412",
    "nnhdl_test_in", _int_literals, "(uint32_t)(uint16_t)out[o]", "", _int16_words, lambda y: y.astype(np.int64),
    max_width=16, max_width_why="q15/SMLAD")
F32 = Arithmetic(
    "f32", "float", "<f4", "float", 1, 4, "step_f32",
    "One inference in float32, model units (1.0 = mantissa {model.qformat.scale}).",
    ("unrolled", "cmsis"), "mcu.emit_f32:emit_f32",
    "nnhdl_test_in_f32", _float_literals, "bits", "        uint32_t bits;\n        memcpy(&bits, &out[o], 4);\n",
    _float_words, lambda y: y)

ARITHMETICS: dict[str, Arithmetic] = {a.name: a for a in (Q412, F32)}


def arithmetic(name: str) -> Arithmetic:
    """The record called ``name``; a one-line error for any other (the ``--arith`` rule)."""
    try:
        return ARITHMETICS[name]
    except (KeyError, TypeError):
        raise NnhdlError(f"--arith must be {' or '.join(ARITHMETICS)}, got {name!r}") from None
