"""The registry of activations: one object per op (:class:`~nnhdl.ops.base.Activation`), found by name.

Every back end -- golden model, Amaranth gates, q412 and float32 C, JAX quantisers, the planner's
cost model, the model loader's validation -- looks the layer's activation up here and asks the
op for its piece.  Adding an activation: a module beside ``relu.py`` with a subclass, and one
``register`` line below.
"""

from __future__ import annotations

from ..errors import NnhdlError
from .base import Activation, ActivationCost

__all__ = ["ACTIVATIONS", "Activation", "ActivationCost", "activation", "register"]

#: every known activation by name, in registration order
ACTIVATIONS: dict[str, Activation] = {}


def register(op: Activation) -> Activation:
    """Add ``op`` to :data:`ACTIVATIONS`; refuses a duplicate name or an op missing a piece."""
    if not op.name or op.name in ACTIVATIONS:
        raise NnhdlError(f"activation name {op.name!r} is empty or already registered")
    missing = [p for p in Activation.PIECES if getattr(type(op), p) is getattr(Activation, p)]
    if missing:
        raise NnhdlError(f"activation {op.name!r} lacks {', '.join(missing)}")
    ACTIVATIONS[op.name] = op
    return op


def activation(name: str) -> Activation:
    """The registered op called ``name``; an unknown name is one error listing the known ones."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise NnhdlError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}") from None


# the ops register themselves on import; a new op is one more name here
from . import none, relu, tanh  # noqa: E402,F401  (the registry must exist first)
