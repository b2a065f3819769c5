"""The runtime weight-write port: one mantissa per address.

The address space is a plain model fact (:meth:`nnhdl.model.Model.weight_image` and
:meth:`~nnhdl.model.Model.weight_address_map`: layer by layer, the weights in the model
file's order, then the biases), so software writes ``model.weight_image()[a]`` to address
``a`` for any hardware build without Amaranth; the Network decodes addresses into
block-RAM lanes itself.  This module holds the port's gate-level shape.
"""

from __future__ import annotations

from amaranth import signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from ..model import Model
from .arith import bits_for

__all__ = ["weight_write_signature", "weight_address_width"]


def weight_address_width(model: Model) -> int:
    """Bits of ``weight_write.addr`` (holds every address of the image)."""
    return bits_for(model.params - 1)


def weight_write_signature(addr_width: int, width: int, *, bank: bool = False) -> wiring.Signature:
    """``addr``, ``data`` (a signed mantissa), ``en`` (and, inside the Network, the target ``bank``)."""
    members = {"addr": Out(unsigned(addr_width)), "data": Out(signed(width)), "en": Out(1)}
    if bank:
        members["bank"] = Out(1)
    return wiring.Signature(members)
