"""``python -m training.evaluate``: a model's quality on the held-out waveshaper set.

Measured with the **golden integer model** (:func:`nnhdl.reference.evaluate`)
— what the FPGA and the MCU compute — and, for comparison, with the model's
weights as real numbers without any quantisation
(:func:`nnhdl.reference.evaluate_float`).  The figure of merit is the
normalised MSE (MSE / variance of the target) on output channel 0 after the
receptive field, pooled over the test windows of each corner / edge point.

Also checks that the JAX quantised forward pass (float64) reproduces the
golden model's integers exactly on the exported file.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nnhdl import reference
from nnhdl.errors import NnhdlError
from nnhdl.model import Model, write_atomically

from .data import CORNER_SCALE, CORNERS, EDGES, SyntheticData, crossfade, embedding, test_set, triangle, wave

__all__ = ["Scores", "score", "evaluate_model", "main"]

#: fpga_qb's quality goal (golden model, held-out set).
GOAL_MEAN, GOAL_WORST = 0.02, 0.05


@dataclass
class Scores:
    corner: dict[str, float]  # golden model, per corner
    edge: dict[str, float]  # golden model, interpolated points
    corner_float: dict[str, float]
    edge_float: dict[str, float]
    jax_agreement: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.corner.values())))

    @property
    def worst(self) -> float:
        return float(np.max(list(self.corner.values())))

    def as_dict(self) -> dict[str, Any]:
        return {"nmse_corner": self.corner, "nmse_edge": self.edge, "nmse_corner_float": self.corner_float,
                "nmse_edge_float": self.edge_float, "nmse_corner_mean": self.mean, "nmse_corner_worst": self.worst,
                "jax_agreement": self.jax_agreement}


def _check_task(model: Model) -> None:
    if model.input_dim < 3:
        raise NnhdlError(f"model has {model.input_dim} inputs; the waveshaper evaluation needs >= 3 (core, e0, e1)")


def score(model: Model, *, per_point: int = 12, length: int = 4096, float_model: bool = True) -> Scores:
    """Normalised MSE per corner and per edge midpoint on the held-out set."""
    _check_task(model)
    fmt = model.qformat
    segs = test_set(model.input_dim, model.sample_rate, fmt, per_point=per_point, length=length)
    start = model.receptive_field - 1
    err: dict[str, list[float]] = {}
    errf: dict[str, list[float]] = {}
    var: dict[str, list[float]] = {}
    for s in segs:
        xm = fmt.quantize(s.x)
        y = fmt.to_float(reference.evaluate(model, xm)[start:, 0])
        t = s.y[start:].astype(np.float64)
        err.setdefault(s.label, []).append(float(np.sum((y - t) ** 2)))
        var.setdefault(s.label, []).append(t)
        if float_model:
            yf = reference.evaluate_float(model, fmt.to_float(xm))[start:, 0]
            errf.setdefault(s.label, []).append(float(np.sum((yf - t) ** 2)))
    nmse, nmsef = {}, {}
    for label, e in err.items():
        t = np.concatenate(var[label])
        denom = float(np.sum((t - t.mean()) ** 2))
        nmse[label] = float(np.sum(e) / denom)
        if float_model:
            nmsef[label] = float(np.sum(errf[label]) / denom)
    corner = {k: v for k, v in nmse.items() if k in CORNERS}
    edge = {k: v for k, v in nmse.items() if k not in CORNERS}
    return Scores(corner, edge, {k: v for k, v in nmsef.items() if k in CORNERS},
                  {k: v for k, v in nmsef.items() if k not in CORNERS})
