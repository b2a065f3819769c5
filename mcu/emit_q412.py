"""Q4.12 (any width <= 16) C emitter: the golden model's integers on a Cortex-M7.

Two code styles, both bit-exact (``mcu.check`` proves it on every run):

``unrolled`` (default)
    Per layer, straight-line code specialised to the model: activations are
    kept two channels per 32-bit word (odd widths padded with a zero
    channel), each output is one chain of ``SMLAD`` (32-bit accumulator, when
    :mod:`mcu.plan` proves the exact sum fits) or ``SMLALD`` (64-bit) over
    packed weight pairs, then one ``SSAT``/``USAT`` does floor, saturation and
    ReLU together.  A layer's constants (per output group: the bias constants,
    then the weight pairs tap by tap) are stored in the order the code reads
    them, so they stream in through one pointer with ``LDM`` (four words per
    instruction) and the tap rows with ``LDRD``.  po2 layers use the same instructions: on a Cortex-M7 a
    16x16 multiply costs no more than a shift, and the products are the same.
``cmsis``
    The taps are gathered into a contiguous q15 vector and every output is
    one ``arm_dot_prod_q15`` call (the exact 64-bit sum of products); simple,
    but call overhead dominates on tiny layers (measured in benchmarks/mcu.py).

The rounding rules come from :mod:`nnhdl.fixedpoint`: floor is an arithmetic
shift right by ``frac``; ``nearest`` adds ``2**(frac-1)`` first (folded into
the bias constant here); saturation to the W-bit range; ReLU clamps at 0 and,
with ``relu_max``, above.
"""

from __future__ import annotations

import numpy as np

from nnhdl.fixedpoint import rounding_offset
from nnhdl.model import Model
from nnhdl.ops import activation

from .arith import Q412
from .layout import activation_helpers, dest, emit, groups, mirror, opaque_switch, reset, row_ptr, state, step_open, store
from .plan import LayerPlan, ModelPlan, plan_model
from .templates import Q15_HELPERS, banner

__all__ = ["emit_q412", "STYLES"]

STYLES = Q412.styles


def _c_array(values: list[int], per_line: int = 8) -> str:
    lines = []
    for i in range(0, len(values), per_line):
        lines.append("    " + ", ".join(_c_int(v) for v in values[i : i + per_line]) + ",")
    return "\n".join(lines)


def _fits(offset: int, pair: bool) -> bool:
    """Does a byte offset fit the immediate of a Thumb-2 LDRD/STRD (pair) or LDR/STR (one word)?"""
    return -1020 <= offset <= 1020 if pair else -255 <= offset <= 4095


def _pairs(words: list[int]) -> list[list[int]]:
    """Word indices grouped for one LDRD/STRD each (an even index and the next), else alone."""
    out: list[list[int]] = []
    for i in words:
        if out and len(out[-1]) == 1 and out[-1][0] % 2 == 0 and i == out[-1][0] + 1:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def _offsets(words: list[int], back: int, name: str, base: str, indent: str, ctype: str = "uint32_t") -> tuple[str, str, int]:
    """``(opening, pointer, back)``: ``back`` bytes before ``base`` when every access fits its
    immediate, else a pointer of its own (``name``) there, opened in a block."""
    if all(_fits(4 * c[0] - back, len(c) == 2) for c in _pairs(words)):
        return "", base, back
    return f"{indent}{{\n{indent}    {ctype} *{name} = {base} - {back // 4};\n", name, 0


def _row_loads(lp: LayerPlan, tag: str, k: int | None = None) -> str:
    """Load tap row ``k`` (every row when None) into ``x<tag><k>_<j>``.

    A cached row is a constant offset back from ``r``, the newest row (:func:`mcu.layout.row_ptr`):
    one LDRD with that immediate per two words, or, beyond the immediate's reach, from a pointer of
    its own.  A scratch vector is the step's local array, read in plain C so it stays in registers."""
    out = []
    words = lp.words_per_row
    for k in range(len(lp.tap_offsets)) if k is None else [k]:
        names = [f"x{tag}{k}_{j}" for j in range(words)]
        if not lp.has_cache:
            out.append("".join(f"        const uint32_t {x} = r[{j}];\n" for j, x in enumerate(names)))
            continue
        out.append(f"        uint32_t {', '.join(names)};\n")
        opening, base, back = _offsets(list(range(words)), lp.tap_offsets[k] * words * 4, f"r{k}", "r", "        ",
                                      "const uint32_t")
        out.append(opening)
        for c in _pairs(list(range(words))):
            out.append(f"        NNHDL_LDO{len(c)}({', '.join(names[j] for j in c)}, {base}, {4 * c[0] - back});\n")
        out.append("        }\n" if opening else "")
    return "".join(out)


def _stores(plan: ModelPlan, n: int, words: list[tuple[int, str]]) -> str:
    """Store output words ``(index, value)`` of layer n at ``d``: into a cache both copies of the
    row (:func:`mcu.layout.mirror`), two words per STRD; into a scratch vector plain C."""
    if not words:  # an even output whose word the next group completes
        return ""
    if not plan.layers[n + 1].has_cache:
        return "".join(f"        d[{i}] = {v};\n" for i, v in words)
    out = [f"        const uint32_t p{i} = {v};\n" for i, v in words]
    idx = [i for i, _ in words]
    for back in (0, -mirror(Q412, plan, n) * 4):  # the newest row, then its first copy
        opening, base, rest = _offsets(idx, back, f"dm{idx[0]}", "d", "        ")
        out.append(opening)
        for c in _pairs(idx):
            out.append(f"        NNHDL_STO{len(c)}({', '.join(f'p{i}' for i in c)}, {base}, {4 * c[0] - rest});\n")
        out.append("        }\n" if opening else "")
    return "".join(out)


def _loads(first: int, count: int, indent: str) -> str:
    """Load weight words ``first .. first + count - 1`` into ``v<i>``, four (LDM) or fewer at a time."""
    out = []
    for c0 in range(first, first + count, 4):
        names = [f"v{i}" for i in range(c0, min(c0 + 4, first + count))]
        out.append(f"{indent}uint32_t {', '.join(names)};\n{indent}NNHDL_LD{len(names)}(w, {', '.join(names)});\n")
    return "".join(out)


def _c_int(v: int) -> str:
    # INT32_MIN cannot be written as a plain decimal literal of type int32.
    if v == -(1 << 31):
        return "(-2147483647 - 1)"
    return str(int(v))


def _pack_pairs(row: np.ndarray) -> list[int]:
    """int16 values (even count) -> int32 words, element 2j in the low half."""
    r = row.astype(np.int64).reshape(-1, 2)
    words = (r[:, 0] & 0xFFFF) | ((r[:, 1] & 0xFFFF) << 16)
    return [int(w - (1 << 32)) if w >= (1 << 31) else int(w) for w in words]


def _bias_constant(model: Model, b: int) -> int:
    fmt = model.qformat
    return (int(b) << fmt.frac) + rounding_offset(fmt, model.rounding)


def _requant(lp: LayerPlan, model: Model, acc: str) -> str:
    """C expression: accumulator -> activated output mantissa (int32)."""
    fmt, l = model.qformat, lp.layer
    F, W = fmt.frac, fmt.width
    act = activation(l.activation)
    lo = act.c_q412_low(fmt)  # relu's 0 rides on the saturation (one USAT)
    shifted = f"({acc} >> {F})" if F else acc
    if lp.acc32 and lo in (0, fmt.min_int):
        y = f"NNHDL_USAT({shifted}, {W - 1})" if lo == 0 else f"NNHDL_SSAT({shifted}, {W})"
    else:
        y = f"nnhdl_sat64({shifted}, {_c_int(lo)}, {fmt.max_int})"
    return act.c_q412(y, fmt, l.relu_max)


AUTO_BLOCK_64 = 0


def _stream(lp: LayerPlan, model: Model, rows: np.ndarray, block: int) -> list[int]:
    """The layer's constant words in the order the code reads them: per output group its bias
    constants (32-bit accumulators; 64-bit ones start from a literal), then tap-major weight pairs."""
    out: list[int] = []
    for grp in groups(len(rows), block):
        if lp.acc32:
            out += [_bias_constant(model, int(lp.layer.bias[o])) for o in grp]
        out += rows[grp].T.reshape(-1).tolist()
    return out


def _layer_block(lp: LayerPlan, block: int) -> int:
    """Outputs per register block; -1 = auto (measured in benchmarks/mcu.py): four
    32-bit accumulators, but 64-bit ones (two registers each) one at a time."""
    if block >= 0:
        return block
    return 4 if lp.acc32 else AUTO_BLOCK_64


def _emit_unrolled(plan: ModelPlan, prefix: str, opaque: bool, block: int) -> str:
    model = plan.model
    out: list[str] = []
    w = out.append
    w(banner(model, "q412", "unrolled"))
    w("#include <stdint.h>\n#include <string.h>\n")
    w(f'#include "{prefix}_model.h"\n')
    w(opaque_switch(opaque))
    w(Q15_HELPERS)
    w("static inline int32_t nnhdl_min(int32_t a, int32_t b) { return a < b ? a : b; }\n")
    w(activation_helpers(model, "q412"))
    # One array of every layer's constants in read order: one pointer walks through all of them.
    # weights: [out][tap words] packed pairs; taps laid out [k][in_pad]
    body, total = [], 0
    for lp in plan.layers:
        l = lp.layer
        wt = np.zeros((l.kernel_size, lp.in_pad, l.out_dim), dtype=np.int64)
        wt[:, : l.in_dim, :] = l.weight
        rows = np.array([_pack_pairs(wt[:, :, o].reshape(-1)) for o in range(l.out_dim)], np.int64)  # [out][word]
        words = _stream(lp, model, rows, _layer_block(lp, block))
        body.append(f"    /* layer {lp.index}: {l.kind} K={l.kernel_size} d={l.dilation} {l.in_dim}->{l.out_dim} "
                    f"{l.activation}; accumulator in [{lp.acc_range[0]}, {lp.acc_range[1]}] -> "
                    f"{'32' if lp.acc32 else '64'}-bit; per output group: {'biases, then ' if lp.acc32 else ''}"
                    f"weight pairs tap by tap */\n{_c_array(words)}\n")
        total += len(words)
    w(f"static const int32_t {prefix}_k[{total}] = {{\n{''.join(body)}}};\n")
    # state
    w("\n/* Activation caches (circular, two channels per word) and scratch vectors. */\n")
    w(state(Q412, plan))
    w("\n" + reset(plan, prefix))
    w(step_open(Q412, plan, prefix))
    w(f"    const uint32_t *w = (const uint32_t *){prefix}_k;\n    NNHDL_OPAQUE(w);\n")
    # input packing
    first = plan.layers[0]
    dst0 = row_ptr(Q412, first, 0)
    w("    uint32_t *io;  /* where the last layer wrote: the next one's newest input row */\n    {\n")
    w(f"        uint32_t *d = {dst0};\n")
    for j in range(first.words_per_row):
        a = f"(uint32_t)(uint16_t)in[{2 * j}]"
        if 2 * j + 1 < first.layer.in_dim:
            a = f"{a} | ((uint32_t)(uint16_t)in[{2 * j + 1}] << 16)"
        w(store(Q412, plan, -1, j, a, "        "))
    w("        io = d;\n    }\n")
    for lp in plan.layers:
        out.append(_emit_layer_unrolled(plan, lp, prefix, block))
    w("}\n")
    return "".join(out)


def _emit_layer_unrolled(plan: ModelPlan, lp: LayerPlan, prefix: str, block: int) -> str:
    block = _layer_block(lp, block)
    model, l, n = plan.model, lp.layer, lp.index
    s: list[str] = []
    w = s.append
    w(f"    /* layer {n} */\n    {{\n")
    # a fence per layer: GCC would otherwise compute every layer's row addresses at the top and spill them
    w("        NNHDL_FENCE(now);\n")
    nw = lp.words_per_row
    w("        const uint32_t *r = io;  /* the newest row of this layer's input */\n")
    xs = [(k, j) for k in range(len(lp.tap_offsets)) for j in range(nw)]
    final = n + 1 == len(plan.layers)
    w(f"        {'int16_t' if final else 'uint32_t'} *d;\n")
    acc_t, mac = ("int32_t", "NNHDL_SMLAD") if lp.acc32 else ("int64_t", "NNHDL_SMLALD")
    # Every constant of the layer is read once, in the order it is stored (:func:`_stream`), so the
    # loads walk one pointer forward: LDM/LDRD, up to four words per instruction on the Cortex-M7.
    # block > 0: `block` accumulators live in registers while the taps stream
    # past once per block; 0: all taps in registers, one output after another.
    nv = 0  # weight words named so far (v<n>)
    if not block:
        w(_row_loads(lp, ""))
    for g, grp in enumerate(groups(l.out_dim, block)):
        if lp.acc32:
            for o0 in range(0, len(grp), 4):
                names = [f"a{o}" for o in grp[o0 : o0 + 4]]
                w(f"        int32_t {', '.join(names)};\n        NNHDL_LDH{len(names)}(w, {', '.join(names)});\n")
        else:
            for o in grp:
                w(f"        int64_t a{o} = INT64_C({_bias_constant(model, int(l.bias[o]))});\n")
        if block:
            start, end = nv, nv + len(xs) * len(grp)  # this group's weight words
            for k, j in xs:
                if j == 0:  # each group reloads the rows: four accumulators leave no registers to keep them
                    w(_row_loads(lp, f"g{g}_", k))
                for o in grp:
                    if (nv - start) % 4 == 0:  # four at a time, across taps when the group is narrower
                        w(_loads(nv, min(4, end - nv), "        "))
                    w(f"        a{o} = {mac}(xg{g}_{k}_{j}, v{nv}, a{o});\n")
                    nv += 1
        else:
            for o in grp:
                for t, (k, j) in enumerate(xs):
                    if t % 4 == 0:
                        w(_loads(nv, min(4, len(xs) - t), "        "))
                    w(f"        a{o} = {mac}(x{k}_{j}, v{nv}, a{o});\n")
                    nv += 1
        if g == 0:  # where the outputs go, worked out only now (fenced): not a register held through the sums
            w(f"        NNHDL_FENCE(now);\n        d = {dest(Q412, plan, n)};\n")
        words: list[tuple[int, str]] = []
        for o in grp:
            w(f"        const int32_t y{o} = {_requant(lp, model, f'a{o}')};\n")
            if final:
                w(f"        d[{o}] = (int16_t)y{o};\n")
            elif o % 2 == 1:
                # after ReLU the low half is already 0..max (no sign bits to clear)
                lo = f"(uint32_t)y{o - 1}" if activation(l.activation).nonnegative else f"((uint32_t)y{o - 1} & 0xFFFFu)"
                words.append((o // 2, f"{lo} | ((uint32_t)y{o} << 16)"))
            elif o == l.out_dim - 1:
                words.append((o // 2, f"(uint32_t)y{o} & 0xFFFFu"))
        w(_stores(plan, n, words))
    if not final:
        w("        io = d;\n")
    w("    }\n")
    return "".join(s)


def _emit_cmsis(plan: ModelPlan, prefix: str) -> str:
    """One arm_dot_prod_q15 call per output over a gathered q15 tap vector."""
    model = plan.model
    fmt = model.qformat
    s: list[str] = []
    w = s.append
    w(banner(model, "q412", "cmsis"))
    w('#include <stdint.h>\n#include <string.h>\n#include "arm_math.h"\n')
    w(f'#include "{prefix}_model.h"\n\n')
    w("static inline int32_t nnhdl_sat64(int64_t v, int32_t lo, int32_t hi)\n"
      "{\n    return v > hi ? hi : (v < lo ? lo : (int32_t)v);\n}\n\n")
    w(activation_helpers(model, "q412"))
    max_taps = max(lp.layer.taps for lp in plan.layers)
    max_dim = max(max(lp.layer.in_dim, lp.layer.out_dim) for lp in plan.layers)
    for lp in plan.layers:
        l = lp.layer
        wt = l.weight.reshape(l.taps, l.out_dim).T  # [out][taps], taps [k][in]
        w(f"static const q15_t {prefix}_w{lp.index}[{l.out_dim}][{l.taps}] = {{\n")
        for o in range(l.out_dim):
            w("    {" + ", ".join(str(int(v)) for v in wt[o]) + "},\n")
        w("};\n")
        w(f"static const int64_t {prefix}_b{lp.index}[{l.out_dim}] = {{"
          + ", ".join(f"INT64_C({_bias_constant(model, int(b))})" for b in l.bias) + "};\n")
        if lp.has_cache:
            w(f"static q15_t c{lp.index}[{lp.cache_rows}][{l.in_dim}];\nstatic uint32_t p{lp.index};\n")
    w(f"static q15_t g[{max_taps}];\nstatic q15_t h[2][{max_dim}];\n\n")
    w(f"void {prefix}_reset(void)\n{{\n")
    for lp in plan.layers:
        if lp.has_cache:
            w(f"    memset(c{lp.index}, 0, sizeof c{lp.index});\n    p{lp.index} = 0;\n")
    w("}\n\n")
    w(step_open(Q412, None, prefix))
    w(f"    memcpy(h[0], in, {model.input_dim} * sizeof(q15_t));\n")
    for lp in plan.layers:
        l, n = lp.layer, lp.index
        src, dst = f"h[{n % 2}]", f"h[{(n + 1) % 2}]"
        w(f"    /* layer {n} */\n")
        if lp.has_cache:
            mask = lp.cache_rows - 1
            w(f"    p{n} = (p{n} + 1u) & {mask}u;\n")
            w(f"    memcpy(c{n}[p{n}], {src}, sizeof c{n}[0]);\n")
            for k, off in enumerate(lp.tap_offsets):
                w(f"    memcpy(g + {k * l.in_dim}, c{n}[(p{n} - {off}u) & {mask}u], sizeof c{n}[0]);\n")
            taps = "g"
        else:
            taps = src
        act = activation(l.activation)
        lo = act.c_q412_low(fmt)
        hi = fmt.max_int if l.relu_max is None else int(l.relu_max)  # relu_max folds into the saturation
        w(f"    for (int o = 0; o < {l.out_dim}; o++) {{\n")
        w("        q63_t acc;\n")
        w(f"        arm_dot_prod_q15({taps}, {prefix}_w{n}[o], {l.taps}, &acc);\n")
        y = act.c_q412(f"nnhdl_sat64((acc + {prefix}_b{n}[o]) >> {fmt.frac}, {lo}, {hi})", fmt, None)
        w(f"        {dst}[o] = (q15_t){y};\n")
        w("    }\n")
    last = f"h[{len(plan.layers) % 2}]"
    w(f"    memcpy(out, {last}, {model.output_dim} * sizeof(q15_t));\n}}\n")
    return "".join(s)


def emit_q412(model: Model, *, prefix: str = "nnhdl", style: str = "unrolled", opaque_weights: bool = True,
              force_acc64: bool = False, block: int = -1) -> tuple[dict[str, str], ModelPlan]:
    """Return ``{filename: text}`` for the integer path and the memory plan."""
    plan = plan_model(model, Q412, force_acc64=force_acc64)
    return emit(Q412, plan, prefix, style, {"unrolled": lambda: _emit_unrolled(plan, prefix, opaque_weights, block),
                                            "cmsis": lambda: _emit_cmsis(plan, prefix)})
