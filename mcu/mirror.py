"""The float32 ``cmsis``-style program, call for call, through the ``cmsisdsp`` Python package.

This is how the original project prototyped its Daisy firmware; here the
mirror is derived from the same model and makes the same CMSIS-DSP calls in
the same order as the C that :mod:`mcu.emit_f32` prints (``arm_mat_mult_f32``,
``arm_add_f32``, ``arm_clip_f32`` per layer), recording every call's result so
:mod:`mcu.check` can compare it with the C program's trace.
"""

from __future__ import annotations

import numpy as np

from nnhdl.errors import NnhdlError
from nnhdl.model import Model

from .emit_f32 import float_weights, relu_bounds

__all__ = ["mirror_f32", "compare_trace"]


def _dsp():
    try:
        import cmsisdsp
    except ImportError:
        raise NnhdlError("the cmsisdsp Python package is not installed: pip install 'nnhdl[mcu]'") from None
    return cmsisdsp


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
            g = cache[rows].reshape(1, -1).astype(np.float32)
            w, b = weights[n]
            status, y = dsp.arm_mat_mult_f32(g, w)
            if status != 0:
                raise NnhdlError(f"arm_mat_mult_f32 failed with status {status} in layer {n}")
            y = np.asarray(y, dtype=np.float32).reshape(-1)
            calls.append(y.copy())
            y = np.asarray(dsp.arm_add_f32(y, b), dtype=np.float32)
            calls.append(y.copy())
            bounds = relu_bounds(model, n)
            if bounds is not None:
                y = np.asarray(dsp.arm_clip_f32(y, np.float32(bounds[0]), np.float32(bounds[1])), dtype=np.float32)
                calls.append(y.copy())
            pointers[n] = (p + 1) % l.cache_length
            h = y
        outs.append(h)
        per_sample.append(calls)
        flat.extend(calls)
    return np.array(outs, dtype=np.float32).reshape(len(outs), model.output_dim), per_sample, flat


def compare_trace(c_trace: list[np.ndarray], py_trace: list[np.ndarray]) -> tuple[int, float]:
    """Call-for-call comparison: same number of calls, same lengths, values within float32 noise.

    Returns (calls compared, max |difference|); raises NnhdlError naming the first call that differs.
    """
    if len(c_trace) != len(py_trace):
        raise NnhdlError(f"C program made {len(c_trace)} traced calls, the cmsisdsp mirror {len(py_trace)}")
    worst = 0.0
    for i, (a, b) in enumerate(zip(c_trace, py_trace)):
        if a.shape != b.shape:
            raise NnhdlError(f"call {i}: C result has {a.size} values, mirror {b.size}")
        d = float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0
        tol = 1e-6 * (1.0 + float(np.max(np.abs(b))))
        if d > tol:
            raise NnhdlError(f"call {i}: C and cmsisdsp mirror differ by {d:.3g} (tolerance {tol:.3g})")
        worst = max(worst, d)
    return len(c_trace), worst
