"""float32 C emitter: the network in model units on the Cortex-M7's FPU.

Weights are the model's mantissas divided by ``2**frac`` (exact in float32
for widths up to 24), so the float program approximates
:func:`nnhdl.reference.evaluate_float` within float32 rounding.

``unrolled`` (default)
    Straight-line code per layer: taps loaded once, one fused
    multiply-accumulate per weight in tap order starting from the bias; the
    weights are stored in the order they are read and come in eight per
    ``VLDM`` through one pointer.
``cmsis``
    What the original firmware did, generated instead of hand-written: per
    layer ``arm_mat_mult_f32`` (1 x taps times taps x out), ``arm_add_f32``
    for the bias and ``arm_clip_f32`` for ReLU.  :mod:`mcu.mirror` repeats
    exactly these calls with the ``cmsisdsp`` Python package; with
    ``-DNNHDL_TRACE_HOOK`` every call's result is handed to
    ``nnhdl_trace(ptr, n)`` so the two can be compared call for call.
"""

from __future__ import annotations

import numpy as np

from nnhdl.model import Model
from nnhdl.ops import activation

from .arith import F32
from .layout import activation_helpers, copy_row, dest, emit, groups, opaque_switch, reset, row_ptr, state, step_open, store, weight_order
from .plan import ModelPlan, plan_model
from .templates import F32_LOADS, OPAQUE_MACRO, banner

__all__ = ["emit_f32", "STYLES", "float_weights"]

STYLES = F32.styles

FLOAT_MAX = "3.40282347e+38f"


def _f(v: float) -> str:
    """Exact C float literal (hexadecimal)."""
    return float(np.float32(v)).hex() + "f"


def float_weights(model: Model, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Layer n's weights ``[taps, out]`` and bias ``[out]`` as float32 model units."""
    l = model.layers[n]
    scale = float(model.qformat.scale)
    w = (l.weight.astype(np.float64) / scale).astype(np.float32).reshape(l.taps, l.out_dim)
    b = (l.bias.astype(np.float64) / scale).astype(np.float32)
    return w, b


def relu_bounds(model: Model, n: int) -> tuple[float, float] | None:
    """Layer n's clip ``(lo, hi)`` when its activation is one (``arm_clip_f32`` in the cmsis style)."""
    l = model.layers[n]
    return activation(l.activation).f32_clip(model.qformat, l.relu_max)


def _array(values: np.ndarray, per_line: int = 6) -> str:
    vals = [_f(v) for v in values.reshape(-1)]
    return "\n".join("    " + ", ".join(vals[i : i + per_line]) + "," for i in range(0, len(vals), per_line))


def _layer_block(taps: int, block: int) -> int:
    """Outputs per register block; -1 = auto (measured in benchmarks/mcu.py): up to
    20 taps fit the 32 FPU registers beside the eight a VLDM of weights fills, so keep them there;
    wider layers block 16 outputs."""
    return block if block >= 0 else (0 if taps <= 20 else 16)


def _loads(first: int, count: int, indent: str) -> str:
    """Weights ``first .. first + count - 1`` (count <= 8) into ``v<i>``: one VLDM on the Cortex-M7."""
    names = [f"v{i}" for i in range(first, first + count)]
    return f"{indent}float {', '.join(names)};\n{indent}NNHDL_FLD{count}(w, {', '.join(names)});\n"


def _emit_unrolled(plan: ModelPlan, prefix: str, opaque: bool, block: int) -> str:
    model = plan.model
    s: list[str] = [banner(model, "f32", "unrolled")]
    w = s.append
    w(f'#include <math.h>\n#include <stdint.h>\n#include <string.h>\n#include "{prefix}_model.h"\n\n')
    w(opaque_switch(opaque))
    w(OPAQUE_MACRO + F32_LOADS + "\n")
    w(activation_helpers(model, "f32"))
    for lp in plan.layers:
        wt, b = float_weights(model, lp.index)
        order = weight_order(wt.T, _layer_block(lp.layer.taps, block))
        w(f"static const float {prefix}_w{lp.index}[{wt.size}] = {{\n{_array(order)}\n}};\n")
    w("\n" + state(F32, plan) + "\n" + reset(plan, prefix))
    w(step_open(F32, plan, prefix))
    w(copy_row(F32, plan, -1, "in", model.input_dim))
    for lp in plan.layers:
        n, l = lp.index, lp.layer
        _, b = float_weights(model, n)
        w(f"    /* layer {n}: {l.kind} K={l.kernel_size} d={l.dilation} {l.in_dim}->{l.out_dim} {l.activation} */\n")
        w("    {\n")
        xs = []
        lblock = _layer_block(l.taps, block)
        for k, off in enumerate(lp.tap_offsets):
            w(f"        const float *r{k} = {row_ptr(F32, lp, off)};\n")
            for i in range(l.in_dim):
                if lblock:
                    xs.append(f"r{k}[{i}]")
                else:
                    w(f"        const float x{k}_{i} = r{k}[{i}];\n")
                    xs.append(f"x{k}_{i}")
        w(f"        const float *w = {prefix}_w{n};\n        NNHDL_OPAQUE(w);\n")
        w(f"        float *d = {dest(F32, plan, n)};\n")
        act = activation(l.activation)
        # block > 0: that many accumulators stay in FPU registers while the taps
        # stream past; the sum order of every output is the same either way.  The weights are
        # read in the order they are stored, eight per VLDM through one pointer (NNHDL_FLD<n>).
        nv = 0  # weights named so far (v<n>)
        for grp in groups(l.out_dim, lblock):
            for o in grp:
                w(f"        float a{o} = {_f(b[o])};\n")
            if lblock:
                for x in xs:
                    w(f"        {{\n            const float x = {x};\n")
                    for c0 in range(0, len(grp), 8):
                        part = grp[c0 : c0 + 8]
                        w(_loads(nv, len(part), "            "))
                        for o in part:
                            w(f"            a{o} = fmaf(x, v{nv}, a{o});\n")
                            nv += 1
                    w("        }\n")
            else:
                for o in grp:
                    for j, x in enumerate(xs):
                        if j % 8 == 0:
                            w(_loads(nv, min(8, len(xs) - j), "        "))
                        w(f"        a{o} = fmaf({x}, v{nv}, a{o});\n")
                        nv += 1
            for o in grp:
                for line in act.c_f32(f"a{o}", model.qformat, l.relu_max):
                    w(f"        {line}\n")
                w(store(F32, plan, n, o, f"a{o}", "        "))
        w("    }\n")
    w("}\n")
    return "".join(s)


def _emit_cmsis(plan: ModelPlan, prefix: str) -> str:
    model = plan.model
    s: list[str] = [banner(model, "f32", "cmsis")]
    w = s.append
    w(f'#include <stdint.h>\n#include <string.h>\n#include "arm_math.h"\n#include "{prefix}_model.h"\n\n')
    w(activation_helpers(model, "f32"))
    w("#ifdef NNHDL_TRACE_HOOK\nvoid nnhdl_trace(const float *p, uint32_t n);\n#define NNHDL_TRACE(p, n) nnhdl_trace((p), (n))\n"
      "#else\n#define NNHDL_TRACE(p, n) ((void)0)\n#endif\n\n")
    max_taps = max(lp.layer.taps for lp in plan.layers)
    for lp in plan.layers:
        wt, b = float_weights(model, lp.index)
        n = lp.index
        w(f"static const float {prefix}_w{n}[{wt.size}] = {{\n{_array(wt)}\n}};\n")
        w(f"static const float {prefix}_b{n}[{b.size}] = {{\n{_array(b)}\n}};\n")
    w("\n" + state(F32, plan))
    w(f"static float g[{max_taps}];\n")
    for lp in plan.layers:
        n, l = lp.index, lp.layer
        w(f"static float y{n}[{l.out_dim}];\n")
        # arm_matrix_instance_f32 holds a non-const pointer; the matrix functions never write their sources.
        w(f"static const arm_matrix_instance_f32 W{n} = {{{l.taps}, {l.out_dim}, (float32_t *){prefix}_w{n}}};\n")
        w(f"static const arm_matrix_instance_f32 G{n} = {{1, {l.taps}, g}};\n")
        w(f"static arm_matrix_instance_f32 Y{n} = {{1, {l.out_dim}, y{n}}};\n")
    w("\n" + reset(plan, prefix))
    w(step_open(F32, plan, prefix))
    w(copy_row(F32, plan, -1, "in", model.input_dim))
    for lp in plan.layers:
        n, l = lp.index, lp.layer
        w(f"    /* layer {n} */\n")
        for k, off in enumerate(lp.tap_offsets):
            w(f"    memcpy(g + {k * l.in_dim}, {row_ptr(F32, lp, off)}, {l.in_dim} * sizeof(float));\n")
        w(f"    arm_mat_mult_f32(&G{n}, &W{n}, &Y{n});\n    NNHDL_TRACE(y{n}, {l.out_dim});\n")
        w(f"    arm_add_f32(y{n}, {prefix}_b{n}, y{n}, {l.out_dim});\n    NNHDL_TRACE(y{n}, {l.out_dim});\n")
        bounds = relu_bounds(model, n)
        if bounds is not None:
            hi = _f(bounds[1]) if l.relu_max is not None else FLOAT_MAX
            w(f"    arm_clip_f32(y{n}, y{n}, {_f(bounds[0]) if bounds[0] else '0.0f'}, {hi}, {l.out_dim});\n"
              f"    NNHDL_TRACE(y{n}, {l.out_dim});\n")
        else:
            body = activation(l.activation).c_f32(f"y{n}[o]", model.qformat, l.relu_max)
            if body:  # an elementwise op that is not a clip: one loop, traced as one call
                w(f"    for (int o = 0; o < {l.out_dim}; o++) {{ {' '.join(body)} }}\n"
                  f"    NNHDL_TRACE(y{n}, {l.out_dim});\n")
        w(copy_row(F32, plan, n, f"y{n}", l.out_dim))
    w("}\n")
    return "".join(s)


def emit_f32(model: Model, *, prefix: str = "nnhdl", style: str = "unrolled", opaque_weights: bool = True,
             force_acc64: bool = False, block: int = -1) -> tuple[dict[str, str], ModelPlan]:
    """Return ``{filename: text}`` for the float path and the memory plan (``force_acc64``: no effect,
    float sums have no accumulator choice; accepted so both emitters take the same options)."""
    plan = plan_model(model, F32, force_acc64=force_acc64)
    return emit(F32, plan, prefix, style, {"unrolled": lambda: _emit_unrolled(plan, prefix, opaque_weights, block),
                                           "cmsis": lambda: _emit_cmsis(plan, prefix)})
