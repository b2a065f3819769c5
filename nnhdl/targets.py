"""Where ``python -m nnhdl run --target NAME`` sends the samples.

Each target is ``module:function`` with the signature
``run(model, x, options) -> Result``; modules are imported only when chosen,
so a target's heavy dependencies (Amaranth, a C compiler) are needed only by
the users of that target.  Later back ends add one line here.
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .errors import NnhdlError
from .model import Model

__all__ = ["Result", "TARGETS", "run_target"]


@dataclass
class Result:
    """Output mantissas ``[T, output_dim]`` and figures to print (name -> value)."""

    output: np.ndarray
    figures: dict[str, object] = field(default_factory=dict)


TARGETS: dict[str, str] = {
    "reference": "nnhdl.reference_target:run",
    "rtl": "nnhdl.sim.target:run",
}


def run_target(name: str, model: Model, x: np.ndarray, options: argparse.Namespace) -> Result:
    if name not in TARGETS:
        raise NnhdlError(f"unknown target {name!r}; choose one of {', '.join(TARGETS)}")
    module_name, func_name = TARGETS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise NnhdlError(f"target {name!r} needs a package that is not installed ({e.name}); "
                         "install nnhdl with the matching extra, see README") from None
    run: Callable[[Model, np.ndarray, argparse.Namespace], Result] = getattr(module, func_name)
    return run(model, x, options)
