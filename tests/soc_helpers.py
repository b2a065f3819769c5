"""Shared test helpers: small models and the expected board mapping (written from DESIGN, not soc/)."""

from __future__ import annotations

import numpy as np

from nnhdl.configs import LayerSpec, NetworkSpec, random_model
from nnhdl.reference import evaluate

SMALL = NetworkSpec("small", 4, (LayerSpec(3, 1, 4, "qb", "relu"), LayerSpec(2, 2, 3, "qb", "none")))


def small_model(seed: int, extreme: bool = False):
    return random_model(SMALL, seed, extreme=extreme)


def board_expected(model, counts: np.ndarray, inputs=None, outputs=(0, None, None, None)) -> np.ndarray:
    """Pmod counts in [T,4] -> expected pmod counts out [T,4] through the network.

    Inputs: network input j reads pmod input ``inputs[j]`` (default 0,1,2 then
    zeros), >> 2.  Outputs: network output ``outputs[c]`` << 2, clipped to int16.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if inputs is None:
        inputs = [j if j < 3 else None for j in range(model.input_dim)]
    x = np.stack([counts[:, s] >> 2 if s is not None else np.zeros(len(counts), np.int64) for s in inputs], axis=1)
    y = evaluate(model, x)
    out = np.zeros((len(counts), 4), dtype=np.int64)
    for c, s in enumerate(outputs):
        if s is not None:
            out[:, c] = np.clip(y[:, s] * 4, -32768, 32767)
    return out
