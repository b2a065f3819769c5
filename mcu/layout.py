"""The C layout both arithmetics share, printed for an injected :class:`mcu.arith.Arithmetic`.

Activation rows: layer n reads a circular cache ``c<n>`` (power-of-two rows, stored
twice over so its taps are constant offsets from the newest row, one sample
counter ``now`` for all caches; :func:`row_ptr`, :func:`mirror`) or a scratch
vector ``s<n>`` (local to the step function); a row is
``arith.row_words(in_dim)`` words of ``arith.row_type``, and every write of a
row goes to both copies (:func:`store`, :func:`copy_row`).  Output groups: the
outputs whose accumulators live in registers together, with the weights stored
tap-major per group so one group's loads walk forward through memory.  State,
reset, the step function's opening and the style dispatch are the same text for
both; only the arithmetic's own loops live in :mod:`mcu.emit_q412` and
:mod:`mcu.emit_f32`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from nnhdl.errors import NnhdlError
from nnhdl.model import Model
from nnhdl.ops import activation

from .arith import Arithmetic, arithmetic
from .plan import Footprint, LayerPlan, ModelPlan
from .templates import c_ident, header

__all__ = ["ExportResult", "generate", "activation_helpers", "groups", "weight_order", "row_ptr", "dest", "mirror", "store", "copy_row", "state", "reset", "step_open", "opaque_switch", "emit"]


def activation_helpers(model: Model, arith: str) -> str:
    """The C helpers of the model's activations (each op once), for the ``q412`` or ``f32`` file."""
    ops = [activation(n) for n in dict.fromkeys(l.activation for l in model.layers)]
    return "".join(op.c_q412_helpers(model.qformat) if arith == "q412" else op.c_f32_helpers(model.qformat)
                   for op in ops)


def groups(out_dim: int, block: int) -> list[list[int]]:
    """Outputs computed together (``block`` at a time; 0: one after another)."""
    if not block:
        return [[o] for o in range(out_dim)]
    return [list(range(o0, min(o0 + block, out_dim))) for o0 in range(0, out_dim, block)]


def weight_order(rows: np.ndarray, block: int) -> np.ndarray:
    """``rows[out][tap]`` in the order the code reads them: per group, tap-major."""
    return np.concatenate([rows[g].T.reshape(-1) for g in groups(len(rows), block)])


def row_ptr(arith: Arithmetic, lp: LayerPlan, offset: int) -> str:
    """C pointer to the row ``offset`` samples back of layer ``lp``'s input.

    A cache of R rows (a power of two) is stored twice over, 2R rows: the newest row, index
    ``now & (R-1)``, is written at that index and R rows further on, so the R rows ending at the
    second copy are the last R samples in order, without a wrap.  Every tap of a layer is then a
    constant offset from one pointer (an immediate in the load) instead of its own masked index."""
    n = lp.index
    if not lp.has_cache:
        return f"s{n}"
    rows, words = lp.cache_rows, arith.row_words(lp.layer.in_dim)
    # 2**32 wraps cleanly: every cache length divides it
    return f"(c{n} + ((now & {rows - 1}u) + {rows - offset}u) * {words}u)"


def dest(arith: Arithmetic, plan: ModelPlan, n: int) -> str:
    """Where layer n writes (n = -1: the model's input): the next layer's newest row, or ``out``."""
    if n + 1 == len(plan.layers):
        return "out"
    return row_ptr(arith, plan.layers[n + 1], 0)


def mirror(arith: Arithmetic, plan: ModelPlan, n: int) -> int:
    """Words from where layer n writes (:func:`dest`) to the second copy it writes too; 0: none."""
    if n + 1 == len(plan.layers) or not plan.layers[n + 1].has_cache:
        return 0
    nxt = plan.layers[n + 1]
    return -nxt.cache_rows * arith.row_words(nxt.layer.in_dim)


def copy_row(arith: Arithmetic, plan: ModelPlan, n: int, src: str, count: int) -> str:
    """C statements: layer n's output row (n = -1: the model's input) is ``count`` values from ``src``."""
    ptr, off = dest(arith, plan, n), mirror(arith, plan, n)
    size = f"{count} * sizeof({arith.c_type})"
    return "".join(f"    memcpy({p}, {src}, {size});\n" for p in ([ptr, f"{ptr} + {off}"] if off else [ptr]))


def store(arith: Arithmetic, plan: ModelPlan, n: int, index: int, value: str, indent: str, ptr: str = "d") -> str:
    """C statements: word ``index`` of layer n's output row (at ``ptr``; n = -1: the model's input)
    is ``value``, in both copies of a cache row."""
    off = mirror(arith, plan, n)
    return "".join(f"{indent}{ptr}[{i}] = {value};\n" for i in ([index, index + off] if off else [index]))


def state(arith: Arithmetic, plan: ModelPlan) -> str:
    """The activation caches and the sample counter (the state kept between samples)."""
    s = []
    for lp in plan.layers:
        if lp.has_cache:
            s.append(f"static {arith.row_type} c{lp.index}[{2 * lp.cache_rows * arith.row_words(lp.layer.in_dim)}];\n")
    s.append("static uint32_t nnhdl_t; /* samples since reset */\n")
    return "".join(s)


def reset(plan: ModelPlan, prefix: str) -> str:
    s = [f"void {prefix}_reset(void)\n{{\n"]
    for lp in plan.layers:
        if lp.has_cache:
            s.append(f"    memset(c{lp.index}, 0, sizeof c{lp.index});\n")
    s.append("    nnhdl_t = 0;\n}\n\n")
    return "".join(s)


def step_open(arith: Arithmetic, plan: ModelPlan | None, prefix: str) -> str:
    """The step function's signature and, with a ``plan``, its sample counter and scratch vectors.

    A 1x1 layer's input lives only within one sample, so it is a local array of the step
    function (written whole by the layer before, read after): GCC keeps it in registers."""
    s = f"void {arith.step_name(prefix)}(const {arith.c_type} *in, {arith.c_type} *out)\n{{\n"
    if plan is not None:
        s += "    uint32_t now = ++nnhdl_t;\n"
        if not any(lp.has_cache for lp in plan.layers):
            s += "    (void)now;\n"
        for lp in plan.layers:
            if not lp.has_cache:
                s += f"    {arith.row_type} s{lp.index}[{arith.row_words(lp.layer.in_dim)}];\n"
    return s


def opaque_switch(opaque: bool) -> str:
    """``NNHDL_OPAQUE_WEIGHTS``'s default (the macro is in :data:`mcu.templates.OPAQUE_MACRO`)."""
    return f"#ifndef NNHDL_OPAQUE_WEIGHTS\n#define NNHDL_OPAQUE_WEIGHTS {1 if opaque else 0}\n#endif\n"


def emit(arith: Arithmetic, plan: ModelPlan, prefix: str, style: str,
         styles: dict[str, Callable[[], str]]) -> tuple[dict[str, str], ModelPlan]:
    """``({header, source}, plan)`` with the source printed by ``styles[style]``."""
    if style not in arith.styles or style not in styles:
        raise NnhdlError(f"--style must be one of {', '.join(arith.styles)}, got {style!r}")
    c = styles[style]()
    return {f"{prefix}_model.h": header(plan.model, arith, style, prefix), f"{prefix}_model.c": c}, plan


@dataclass
class ExportResult:
    files: dict[str, str]
    plan: ModelPlan
    footprint: Footprint


def generate(model: Model, arith: str = "q412", *, prefix: str = "nnhdl", style: str = "unrolled",
             opaque_weights: bool = True, force_acc64: bool = False, block: int | None = None) -> ExportResult:
    """C sources for ``model`` in the arithmetic called ``arith`` (nothing written)."""
    c_ident(prefix)
    emitter = arithmetic(arith).emit()
    files, plan = emitter(model, prefix=prefix, style=style, opaque_weights=opaque_weights, force_acc64=force_acc64,
                          **({} if block is None else {"block": block}))
    return ExportResult(files, plan, plan.footprint())
