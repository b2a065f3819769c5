"""The network in JAX, built from the same layer list as the model file.

``Net`` is the static part (layer shapes, kinds, activations, Q format,
rounding); the parameters are a list of ``{"w": [K, in, out], "b": [out]}``
float arrays in model units.  :func:`forward` with ``quantised=True`` runs
exactly the golden model's arithmetic (DESIGN §1-2) — in float64 it returns
the golden model's integers divided by 2**F — with straight-through
gradients for training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnhdl.configs import NetworkSpec
from nnhdl.fixedpoint import QFormat
from nnhdl.model import Layer, Model
from nnhdl.ops import activation

from .quantisers import activate_units, quantize_weight, requantize_units, weight_mantissas

__all__ = ["LayerDef", "Net", "init_params", "forward", "export_model", "params_from_model"]

Params = list[dict[str, jax.Array]]


@dataclass(frozen=True)
class LayerDef:
    kind: str
    kernel_size: int
    dilation: int
    in_dim: int
    out_dim: int
    activation: str
    relu_max: int | None = None


@dataclass(frozen=True)
class Net:
    """Static description of a network (hashable, so it can be a jit static argument)."""

    name: str
    input_dim: int
    layers: tuple[LayerDef, ...]
    fmt: QFormat = QFormat()
    rounding: str = "floor"
    sample_rate: int = 192000

    @classmethod
    def from_spec(cls, spec: NetworkSpec, sample_rate: int | None = None) -> "Net":
        layers, in_dim = [], spec.input_dim
        for l in spec.layers:
            layers.append(LayerDef(l.kind, l.kernel_size, l.dilation, in_dim, l.out_dim, l.activation, l.relu_max))
            in_dim = l.out_dim
        return cls(spec.name, spec.input_dim, tuple(layers), spec.qformat, spec.rounding, sample_rate or spec.sample_rate)

    @classmethod
    def from_model(cls, model: Model) -> "Net":
        layers = tuple(LayerDef(l.kind, l.kernel_size, l.dilation, l.in_dim, l.out_dim, l.activation, l.relu_max)
                       for l in model.layers)
        return cls(model.name or "model", model.input_dim, layers, model.qformat, model.rounding, model.sample_rate)

    @property
    def receptive_field(self) -> int:
        return 1 + sum((l.kernel_size - 1) * l.dilation for l in self.layers)


def init_params(net: Net, key: jax.Array, dtype: Any = jnp.float32) -> Params:
    """He-scaled weights (relu layers) / fan-in-scaled (linear layers), zero bias."""
    params = []
    for l in net.layers:
        key, sub = jax.random.split(key)
        fan_in = l.kernel_size * l.in_dim
        gain = activation(l.activation).init_gain
        w = jax.random.normal(sub, (l.kernel_size, l.in_dim, l.out_dim), dtype) * np.sqrt(gain / fan_in)
        params.append({"w": w.astype(dtype), "b": jnp.zeros((l.out_dim,), dtype)})
    return params


def _taps(x: jax.Array, l: LayerDef) -> jax.Array:
    """``[B, T, in] -> [B, T, K*in]`` causal history, k = 0 oldest, zeros before t = 0."""
    if l.kernel_size == 1:
        return x
    t = x.shape[1]
    pad = (l.kernel_size - 1) * l.dilation
    padded = jnp.pad(x, ((0, 0), (pad, 0), (0, 0)))
    return jnp.concatenate([padded[:, k * l.dilation:k * l.dilation + t] for k in range(l.kernel_size)], axis=-1)


def forward(params: Params, x: jax.Array, net: Net, quantised: bool = True) -> jax.Array:
    """``x [B, T, input_dim]`` (model units) -> ``[B, T, output_dim]``.

    ``quantised=True``: weights through their quantisers, every layer output
    requantised/saturated as the golden model does.  ``False``: the float
    network (what :func:`nnhdl.reference.evaluate_float` computes).
    """
    h = x
    for p, l in zip(params, net.layers):
        w, b = p["w"], p["b"]
        if quantised:
            w = quantize_weight(w, l.kind, net.fmt)
            b = quantize_weight(b, "qb", net.fmt)
        acc = _taps(h, l) @ w.reshape(l.kernel_size * l.in_dim, l.out_dim) + b
        if quantised:
            acc = requantize_units(acc, net.fmt, net.rounding)
        h = activate_units(acc, l.activation, l.relu_max, net.fmt)
    return h


_forward_jit = jax.jit(forward, static_argnums=(2, 3))


def export_model(params: Params, net: Net, meta: dict[str, Any]) -> Model:
    """Integer model from trained parameters: exactly the quantisers' mantissas."""
    layers = []
    for p, l in zip(params, net.layers):
        layers.append(Layer(
            kind=l.kind, kernel_size=l.kernel_size, dilation=l.dilation, in_dim=l.in_dim, out_dim=l.out_dim,
            activation=l.activation, relu_max=l.relu_max,
            weight=weight_mantissas(p["w"], l.kind, net.fmt), bias=weight_mantissas(p["b"], "qb", net.fmt),
        ))
    return Model(layers, net.fmt, net.rounding, net.input_dim, net.sample_rate, dict(meta)).validate()


def params_from_model(model: Model, dtype: Any = jnp.float64) -> Params:
    """A model file's integers as JAX parameters (exact: mantissa / 2**F)."""
    s = float(model.qformat.scale)
    return [{"w": jnp.asarray(l.weight.astype(np.float64) / s, dtype), "b": jnp.asarray(l.bias.astype(np.float64) / s, dtype)}
            for l in model.layers]


def golden_equivalent(model: Model, x_mantissas: np.ndarray) -> np.ndarray:
    """The JAX quantised forward pass in float64 on mantissa input, as int64 mantissas.

    Must equal :func:`nnhdl.reference.evaluate` exactly (the evaluation
    command and the tests check it).
    """
    net = Net.from_model(model)
    x = jnp.asarray(np.asarray(x_mantissas, dtype=np.float64) / model.qformat.scale, jnp.float64)[None]
    y = np.asarray(_forward_jit(params_from_model(model), x, net, True))[0]
    m = y * model.qformat.scale
    out = np.rint(m).astype(np.int64)
    if not np.array_equal(out, m):
        raise AssertionError("JAX float64 forward pass produced a non-integer mantissa")
    return out
