"""The golden model: the integers every back end must reproduce.

Three evaluations of one :class:`~nnhdl.model.Model`:

* :func:`evaluate` — whole sequence at once, vectorised over time;
* :class:`StreamingModel` — one sample in, one out, holding per-layer
  activation caches (circular buffers) exactly as hardware and MCU do;
* :func:`evaluate_float` — the same network in float64, no quantisation
  anywhere, for comparisons with training; :func:`evaluate_float_bound`
  adds a derived bound on how far a float32 program may be from it.

The first two must agree bit for bit (tests prove it).
"""

from __future__ import annotations

import numpy as np

from .errors import NnhdlError
from .fixedpoint import QFormat, accumulate, activate, requantize
from .model import Layer, Model
from .ops import activation

__all__ = ["evaluate", "evaluate_layer", "tap_history", "StreamingModel", "evaluate_float", "evaluate_float_bound",
           "FLOAT32_UNIT_ROUNDOFF", "dot_error_gamma", "check_input"]


def check_input(model: Model, x: np.ndarray) -> np.ndarray:
    """Validate an input sequence ``[T, input_dim]`` of mantissas; return int64."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != model.input_dim:
        raise NnhdlError(
            f"input has shape {list(x.shape)}; the model expects [samples, {model.input_dim}] channels"
        )
    if not np.issubdtype(x.dtype, np.integer):
        raise NnhdlError(f"input dtype {x.dtype} is not integer; give Q-format mantissas")
    if not model.qformat.fits(x):
        raise NnhdlError(f"input values do not fit {model.qformat} ({model.qformat.min_int}..{model.qformat.max_int})")
    return x.astype(np.int64)


def tap_history(x: np.ndarray, layer: Layer) -> np.ndarray:
    """``[T, K, in_dim]`` taps: ``taps[t, k] = x[t - (K-1-k)*d]`` (zeros before t=0)."""
    t = x.shape[0]
    pad = (layer.kernel_size - 1) * layer.dilation
    padded = np.concatenate([np.zeros((pad, x.shape[1]), dtype=x.dtype), x])
    return np.stack([padded[k * layer.dilation : k * layer.dilation + t] for k in range(layer.kernel_size)], axis=1)


def evaluate_layer(model: Model, layer: Layer, x: np.ndarray) -> np.ndarray:
    """One layer over a whole sequence ``[T, in_dim] -> [T, out_dim]``."""
    acc = accumulate(tap_history(x, layer), layer.weight, layer.bias, model.qformat)
    y = requantize(acc, model.qformat, model.rounding)
    return activate(y, layer.activation, layer.relu_max, model.qformat)


def evaluate(model: Model, x: np.ndarray, *, chunk: int = 65536) -> np.ndarray:
    """Whole-sequence golden model: ``[T, input_dim] -> [T, output_dim]`` int64.

    Long inputs are processed in chunks that carry each layer's history, so
    memory stays bounded; the result equals one-shot evaluation.
    """
    x = check_input(model, x)
    if x.shape[0] <= chunk:
        for layer in model.layers:
            x = evaluate_layer(model, layer, x)
        return x
    outs = []
    tails = [np.zeros((l.cache_length - 1, l.in_dim), dtype=np.int64) for l in model.layers]
    for start in range(0, x.shape[0], chunk):
        h = x[start : start + chunk]
        for n, layer in enumerate(model.layers):
            # The carried tail replaces the zero padding of the first chunk.
            keep = tails[n].shape[0]
            joined = np.concatenate([tails[n], h])
            h = evaluate_layer(model, layer, joined)[keep:]
            tails[n] = joined[joined.shape[0] - keep :]
        outs.append(h)
    return np.concatenate(outs)


class StreamingModel:
    """Sample-by-sample golden model with hardware-style activation caches.

    Layer ``l`` keeps a circular buffer of ``(K-1)*d + 1`` input vectors and
    a write pointer; tap ``k`` reads the entry written ``(K-1-k)*d`` samples
    ago.  1x1 layers hold no cache.  :meth:`reset` zeroes all history.
    """

    def __init__(self, model: Model) -> None:
        model.validate()
        self.model = model
        self.caches = [np.zeros((l.cache_length, l.in_dim), dtype=np.int64) for l in model.layers]
        self.pointers = [0] * len(model.layers)
        self._weights = [l.weight.reshape(l.taps, l.out_dim) for l in model.layers]

    def reset(self) -> None:
        for c in self.caches:
            c[:] = 0
        self.pointers = [0] * len(self.caches)

    def step(self, x: np.ndarray) -> np.ndarray:
        """One input vector (mantissas) -> one output vector (int64)."""
        fmt = self.model.qformat
        h = np.asarray(x, dtype=np.int64)
        for n, layer in enumerate(self.model.layers):
            cache, p = self.caches[n], self.pointers[n]
            length = layer.cache_length
            cache[p] = h
            k = np.arange(layer.kernel_size)
            rows = (p - (layer.kernel_size - 1 - k) * layer.dilation) % length
            taps = cache[rows].reshape(-1)
            acc = taps @ self._weights[n] + (layer.bias << fmt.frac)
            h = activate(requantize(acc, fmt, self.model.rounding), layer.activation, layer.relu_max, fmt)
            self.pointers[n] = (p + 1) % length
        return h

    def run(self, x: np.ndarray) -> np.ndarray:
        """Step through a whole sequence (without resetting first)."""
        x = check_input(self.model, x)
        return np.stack([self.step(v) for v in x]) if len(x) else np.zeros((0, self.model.output_dim), np.int64)


def _activate_float(layer: Layer, y: np.ndarray, fmt: QFormat) -> np.ndarray:
    """The layer's activation on real numbers (monotone non-decreasing, 1-Lipschitz)."""
    return activation(layer.activation).apply_float(y, fmt, layer.relu_max)


def evaluate_float(model: Model, x: np.ndarray) -> np.ndarray:
    """The network in float64 with the model's weights as real numbers.

    No rounding or saturation anywhere: the "ideal" network the integers
    approximate.  ``x`` is in model units (floats), shape ``[T, input_dim]``.
    """
    return evaluate_float_bound(model, x)[0]


#: Unit roundoff of IEEE binary32 (round to nearest): every float32 operation
#: returns ``op(a, b) * (1 + delta)`` with ``|delta| <= 2**-24``.
FLOAT32_UNIT_ROUNDOFF = 2.0 ** -24
_FLOAT64_UNIT_ROUNDOFF = 2.0 ** -53
# Absolute slack per operation for underflow, even where subnormals flush to
# zero (the smallest normal binary32 number).
_FLOAT32_TINY = 2.0 ** -126


def dot_error_gamma(n: int, u: float = FLOAT32_UNIT_ROUNDOFF) -> float:
    """gamma_n(u) + gamma_n(2**-53): bound on |computed - exact| / sum|terms| of an n-term dot product
    evaluated in any order at unit roundoff ``u`` and compared with a float64 evaluation."""
    return _gamma(n, u) + _gamma(n, _FLOAT64_UNIT_ROUNDOFF)


def _gamma(n: int, u: float) -> float:
    """Higham's gamma_n = n*u / (1 - n*u): the relative error bound of a sum of n rounded products."""
    nu = n * u
    if nu >= 0.5:
        raise NnhdlError(f"a dot product of {n} terms is too long for a float error bound at unit roundoff {u:g}")
    return nu / (1.0 - nu)


def evaluate_float_bound(model: Model, x: np.ndarray, unit_roundoff: float | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`evaluate_float`, plus a bound on how far a float program may stray from it.

    With ``unit_roundoff=u`` (``FLOAT32_UNIT_ROUNDOFF`` for a float32
    program), ``bound[t, o]`` is a rigorous upper bound on
    ``|y_program[t, o] - y_ref[t, o]|`` for *any* program that evaluates the
    network in that arithmetic: each layer's ``K*in_dim`` products plus bias
    summed in any order, with or without fused multiply-adds (so a C compiler,
    CMSIS-DSP's loop unrolling or ``-ffast-math`` reassociation all stay
    inside it), from inputs and weights that are exact in that format.

    Per layer, with ``n = K*in_dim + 1`` terms, input error bound ``e`` and
    magnitudes ``S = (|x| + e) @ |W| + |b|`` (Higham, *Accuracy and Stability
    of Numerical Algorithms*, §3.1: a computed dot product is within
    ``gamma_n * sum |terms|`` of the exact one, whatever the order):

        e_out = e @ |W| + (gamma_n(u) + gamma_n(2**-53)) * S + n * 2**-126

    the second gamma covering the float64 reference's own rounding and the
    last term underflow.  Activations are monotone, so the output error is
    ``max(act(y + e) - act(y), act(y) - act(y - e))``; saturation and
    requantisation do not exist in this path; an activation the program can only
    approximate adds its own bound (``Activation.f32_error``, 0 for none/relu).  Errors travel to later
    samples through the taps, exactly as the values do.  ``unit_roundoff=None``
    skips the bound (returns zeros) for callers that only need the values.
    """
    h = np.asarray(x, dtype=np.float64)
    err = np.zeros_like(h)
    scale = float(model.qformat.scale)
    for layer in model.layers:
        w = (layer.weight.astype(np.float64) / scale).reshape(layer.taps, layer.out_dim)
        b = layer.bias.astype(np.float64) / scale
        taps = tap_history(h, layer).reshape(h.shape[0], -1)
        y = taps @ w + b
        if unit_roundoff is None:
            h = _activate_float(layer, y, model.qformat)
            err = np.zeros_like(h)
            continue
        n = layer.taps + 1
        gamma = dot_error_gamma(n, unit_roundoff)
        aw = np.abs(w)
        etaps = tap_history(err, layer).reshape(h.shape[0], -1)
        e = etaps @ aw + gamma * ((np.abs(taps) + etaps) @ aw + np.abs(b)) + n * _FLOAT32_TINY
        h = _activate_float(layer, y, model.qformat)
        err = np.maximum(_activate_float(layer, y + e, model.qformat) - h, h - _activate_float(layer, y - e, model.qformat))
        err = err + activation(layer.activation).f32_error(unit_roundoff)  # the program's own approximation
    # the bound itself is computed in float64: a relative margin far above its own rounding
    return h, err * (1.0 + 1e-9)
