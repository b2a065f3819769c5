"""The float32 ``cmsis``-style program, call for call, through the ``cmsisdsp`` Python package.

This is how the original project prototyped its Daisy firmware; here the
mirror is derived from the same model and makes the same CMSIS-DSP calls in
the same order as the C that :mod:`mcu.emit_f32` prints (``arm_mat_mult_f32``,
``arm_add_f32``, ``arm_clip_f32`` per layer).

Three uses:

* :func:`emulate_unrolled_f32` is the ``unrolled`` program's arithmetic in
  numpy: its order of operations is fixed by the emitter (bias first, then one
  ``fmaf`` per tap, oldest tap first, then the ReLU compares) and every
  ``fmaf`` is one correctly rounded IEEE operation on the host (glibc) and on
  the Cortex-M7 (``VFMA.F32``), so the C must equal it bit for bit;
* :func:`mirror_f32` runs the whole ``cmsis`` program on its own (a float32
  model of the firmware, for experiments);
* :func:`check_trace` checks a C program's trace call by call: every call is
  recomputed by ``cmsisdsp`` from *that call's own inputs as the C program
  saw them* (its earlier traced results), so no difference is carried from
  one call to the next and each call is judged alone.

Where the two sides must agree (the definition lives here):

* ``arm_add_f32`` and ``arm_clip_f32`` are one correctly rounded IEEE
  operation (or a comparison) per element: the C and the mirror must agree
  exactly (up to ``2**-126``, in case one side flushes subnormals).
* ``arm_mat_mult_f32`` sums ``n`` products in an order that is not fixed:
  CMSIS-DSP's C is sequential, but ``cmsisdsp`` >= 1.10.2 builds its library
  with ``-O3 -ffast-math`` (CMake), which lets gcc reassociate the sum, and a
  Cortex-M build fuses multiply-adds.  Each side is within
  ``gamma_n * sum |g_i w_i|`` of the exact dot product (Higham §3.1, any
  order), so the C result must lie within that bound of the exact value, and
  C and mirror within twice that bound of each other.
"""

from __future__ import annotations

import numpy as np

from nnhdl.errors import NnhdlError
from nnhdl.model import Model
from nnhdl.ops import activation
from nnhdl.reference import dot_error_gamma, tap_history

from .emit_f32 import float_weights, relu_bounds

__all__ = ["emulate_unrolled_f32", "fma_f32", "mirror_f32", "check_trace", "calls_per_sample"]

_TINY = 2.0 ** -126  # absolute slack per operation for flushed subnormals


def fma_f32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """C's ``fmaf``: ``a*b + c`` on float32 values with a single rounding to float32.

    ``a*b`` is exact in float64 (24 + 24 significant bits); TwoSum gives the
    float64 sum ``s`` and its exact error ``e``.  Rounding ``s`` to float32
    can only differ from rounding ``s + e`` when ``s`` sits exactly halfway
    between two float32 values and ``e`` breaks the tie: that case is fixed
    by hand.
    """
    a64, b64, c64 = (np.asarray(v, np.float32).astype(np.float64) for v in (a, b, c))
    p = a64 * b64
    s = p + c64
    bp = s - c64
    e = (p - bp) + (c64 - (s - bp))
    r = s.astype(np.float32)
    rd = r.astype(np.float64)
    toward = np.nextafter(r, np.where(s > rd, np.float32(np.inf), np.float32(-np.inf)))
    td = toward.astype(np.float64)
    tie = (s != rd) & (s == (rd + td) * 0.5) & (e != 0)
    return np.where(tie & (np.sign(e) == np.sign(td - rd)), toward, r)


def emulate_unrolled_f32(model: Model, x: np.ndarray) -> np.ndarray:
    """What the ``unrolled`` float32 program computes for ``x`` ([T, input_dim] float32), bit for bit."""
    h = np.asarray(x, dtype=np.float32)
    for n, layer in enumerate(model.layers):
        w, b = float_weights(model, n)
        g = tap_history(h, layer).reshape(len(h), -1)
        acc = np.broadcast_to(b, (len(h), layer.out_dim)).astype(np.float32)
        for j in range(layer.taps):
            acc = fma_f32(g[:, j : j + 1], w[j][None, :], acc)
        acc = activation(layer.activation).f32_emulate(acc, model.qformat, layer.relu_max)
        h = acc.astype(np.float32)
    return h


def _dsp():
    try:
        import cmsisdsp
    except ImportError:
        raise NnhdlError("the cmsisdsp Python package is not installed: pip install 'nnhdl[mcu]'") from None
    return cmsisdsp


def _elementwise(model: Model, n: int) -> bool:
    """Layer n's activation is a C loop of its own (not a clip, not the identity): one traced call."""
    l = model.layers[n]
    return relu_bounds(model, n) is None and bool(activation(l.activation).c_f32("x", model.qformat, l.relu_max))


def _layer_calls(model: Model, n: int) -> list[str]:
    act = ["arm_clip_f32"] if relu_bounds(model, n) is not None else \
        [f"{model.layers[n].activation} loop"] if _elementwise(model, n) else []
    return ["arm_mat_mult_f32", "arm_add_f32"] + act


def calls_per_sample(model: Model) -> int:
    """How many CMSIS-DSP calls the ``cmsis`` program makes (and traces) per sample."""
    return sum(len(_layer_calls(model, n)) for n in range(len(model.layers)))


def _mat_mult(dsp, g: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    status, y = dsp.arm_mat_mult_f32(g.reshape(1, -1), w)
    if status != 0:
        raise NnhdlError(f"arm_mat_mult_f32 failed with status {status} in layer {n}")
    return np.asarray(y, dtype=np.float32).reshape(-1)


def mirror_f32(model: Model, x: np.ndarray) -> tuple[np.ndarray, list[list[np.ndarray]], list[np.ndarray]]:
    """Run ``x`` ([T, input_dim] float32 model units) sample by sample.

    Returns the outputs ``[T, output_dim]``, the per-sample call results and
    the flat trace (the order the C program's ``nnhdl_trace`` sees them).
    """
    dsp = _dsp()
    layers = model.layers
    weights = [float_weights(model, n) for n in range(len(layers))]
    caches = [np.zeros((l.cache_length, l.in_dim), np.float32) for l in layers]
    pointers = [0] * len(layers)
    outs, per_sample, flat = [], [], []
    for v in np.asarray(x, dtype=np.float32):
        h = v
        calls = []
        for n, l in enumerate(layers):
            cache, p = caches[n], pointers[n]
            cache[p] = h
            rows = [(p - (l.kernel_size - 1 - k) * l.dilation) % l.cache_length for k in range(l.kernel_size)]
            w, b = weights[n]
            y = _mat_mult(dsp, cache[rows].astype(np.float32), w, n)
            calls.append(y.copy())
            y = np.asarray(dsp.arm_add_f32(y, b), dtype=np.float32)
            calls.append(y.copy())
            bounds = relu_bounds(model, n)
            if bounds is not None:
                y = np.asarray(dsp.arm_clip_f32(y, np.float32(bounds[0]), np.float32(bounds[1])), dtype=np.float32)
                calls.append(y.copy())
            elif _elementwise(model, n):
                y = activation(l.activation).f32_emulate(y, model.qformat, l.relu_max)
                calls.append(y.copy())
            pointers[n] = (p + 1) % l.cache_length
            h = y
        outs.append(h)
        per_sample.append(calls)
        flat.extend(calls)
    return np.array(outs, dtype=np.float32).reshape(len(outs), model.output_dim), per_sample, flat


def check_trace(model: Model, x: np.ndarray, c_trace: list[np.ndarray]) -> tuple[int, float]:
    """Check the C program's call trace for input ``x`` call by call against ``cmsisdsp``.

    Returns (calls checked, max |C - mirror|); raises NnhdlError naming the
    first call that is off (its index, layer, sample and CMSIS function).
    Traces longer than ``x`` are cut to ``len(x)`` samples.
    """
    dsp = _dsp()
    x = np.asarray(x, dtype=np.float32)
    per = calls_per_sample(model)
    want = per * len(x)
    if len(c_trace) < want:
        raise NnhdlError(f"C program made {len(c_trace)} traced calls for {len(x)} samples, "
                         f"the cmsisdsp program makes {want} ({per} per sample)")
    h = x
    base = 0
    worst = 0.0
    for n, layer in enumerate(model.layers):
        names = _layer_calls(model, n)
        w, b = float_weights(model, n)
        results = []
        for j, name in enumerate(names):
            rows = [np.asarray(c_trace[t * per + base + j], dtype=np.float32).reshape(-1) for t in range(len(x))]
            for t, r in enumerate(rows):
                if r.size != layer.out_dim:
                    raise NnhdlError(f"call {t * per + base + j} ({name}, layer {n}, sample {t}): C result has "
                                     f"{r.size} values, the layer has {layer.out_dim}")
            results.append(np.stack(rows) if rows else np.zeros((0, layer.out_dim), np.float32))

        def fail(j: int, t: int, what: str) -> NnhdlError:
            return NnhdlError(f"call {t * per + base + j} ({names[j]}, layer {n}, sample {t}): {what}")

        # arm_mat_mult_f32: the taps as the C program's cache held them
        g = tap_history(h, layer).reshape(len(x), -1).astype(np.float32)
        g64, w64 = g.astype(np.float64), w.astype(np.float64)
        k = layer.taps
        bound = dot_error_gamma(k) * (np.abs(g64) @ np.abs(w64)) + k * _TINY
        exact = g64 @ w64
        mm = results[0]
        for t in range(len(x)):
            off = np.abs(mm[t].astype(np.float64) - exact[t])
            if np.any(off > bound[t]):
                raise fail(0, t, f"C result is {off.max():.3g} from the exact dot product of its inputs "
                                 f"(bound {bound[t][np.argmax(off - bound[t])]:.3g})")
            mirror = _mat_mult(dsp, g[t], w, n)
            d = np.abs(mm[t].astype(np.float64) - mirror)
            if np.any(d > 2 * bound[t]):
                raise fail(0, t, f"C and cmsisdsp mirror differ by {d.max():.3g} (bound {2 * bound[t].max():.3g})")
            worst = max(worst, float(d.max()) if d.size else 0.0)
        # arm_add_f32, arm_clip_f32: one rounding per element, exactly reproducible
        prev = mm
        lo_hi = relu_bounds(model, n)
        for j in range(1, len(names)):
            for t in range(len(x)):
                if j == 1:
                    mirror = np.asarray(dsp.arm_add_f32(prev[t], b), dtype=np.float32)
                elif lo_hi is None:  # the activation's own loop (f32_emulate is that C, bit for bit)
                    l = model.layers[n]
                    mirror = activation(l.activation).f32_emulate(prev[t], model.qformat, l.relu_max)
                else:
                    mirror = np.asarray(dsp.arm_clip_f32(prev[t], np.float32(lo_hi[0]), np.float32(lo_hi[1])),
                                        dtype=np.float32)
                d = np.abs(results[j][t].astype(np.float64) - mirror)
                if np.any(d > _TINY):
                    raise fail(j, t, f"C and cmsisdsp mirror differ by {d.max():.3g} (an exact operation)")
                worst = max(worst, float(d.max()) if d.size else 0.0)
            prev = results[j]
        h = prev
        base += len(names)
    return want, worst
