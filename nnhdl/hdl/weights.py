"""The runtime weight address space: one mantissa per address.

Layer by layer, the weights in the model file's own order (``weight[k, i, o]``
flattened in C order) followed by the biases.  The order does not depend on
``lanes`` or ``banks``, so software (the SoC driver, tests) can write
``weight_image(model)[a]`` to address ``a`` for any hardware build; the
Network decodes addresses into block-RAM lanes itself.
"""

from __future__ import annotations

import numpy as np
from amaranth import signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from ..model import Model
from .arith import bits_for

__all__ = ["weight_image", "weight_address_map", "weight_write_signature", "weight_address_width"]


def weight_address_map(model: Model) -> list[tuple[int, str, int, int]]:
    """``(layer, "weight"|"bias", base, length)`` for every block, in address order."""
    out = []
    base = 0
    for n, layer in enumerate(model.layers):
        out.append((n, "weight", base, int(layer.weight.size)))
        base += int(layer.weight.size)
        out.append((n, "bias", base, int(layer.bias.size)))
        base += int(layer.bias.size)
    return out


def weight_image(model: Model) -> np.ndarray:
    """All weights and biases as int64 mantissas, index = weight_write address."""
    parts = []
    for layer in model.layers:
        parts.append(np.asarray(layer.weight, dtype=np.int64).ravel())
        parts.append(np.asarray(layer.bias, dtype=np.int64).ravel())
    return np.concatenate(parts)


def weight_address_width(model: Model) -> int:
    """Bits of ``weight_write.addr`` (holds every address of the image)."""
    return bits_for(model.params - 1)


def weight_write_signature(addr_width: int, width: int, *, bank: bool = False) -> wiring.Signature:
    """``addr``, ``data`` (a signed mantissa), ``en`` (and, inside the Network, the target ``bank``)."""
    members = {"addr": Out(unsigned(addr_width)), "data": Out(signed(width)), "en": Out(1)}
    if bank:
        members["bank"] = Out(1)
    return wiring.Signature(members)
