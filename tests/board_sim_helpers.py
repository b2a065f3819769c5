"""Helpers for the whole-SoC simulation tests: a shared build cache, the host CLI's output,
UARTBone frames as the FPGA received them, and the golden model across a bank swap."""

from __future__ import annotations

import numpy as np

from nnhdl.reference import StreamingModel
from soc.board_sim import LATENCY_FRAMES


def shared_cache(tmp_path_factory) -> str:
    """One simulator cache per test session (shared by xdist workers), so each SoC compiles once."""
    root = tmp_path_factory.getbasetemp()
    if root.name.startswith("popen-gw"):
        root = root.parent
    return str(root / "nnhdl-board-sim-cache")


def parse_status(text: str) -> dict[str, int]:
    """``boards.pmod status`` output -> {name: value} (ids and serial are printed in hex)."""
    out = {}
    for line in text.splitlines():
        k, v = line.split()
        out[k] = int(v, 16) if k.endswith("_id") or k == "serial" else int(v)
    return out


def uartbone_commands(data: bytes) -> list[int]:
    """Command bytes of the UARTBone frames in ``data`` (1/3 write, 2/4 read), written from LiteX's
    protocol: command, word count, 32-bit address, then 4 bytes per word for writes only."""
    cmds, i = [], 0
    while i + 6 <= len(data):
        cmd, n = data[i], data[i + 1]
        cmds.append(cmd)
        i += 6 + (4 * n if cmd in (1, 3) else 0)
    return cmds


def board_inputs(counts: np.ndarray, input_dim: int) -> np.ndarray:
    """Jack counts [T, 4] -> network inputs: jacks 0..2 >> 2 feed inputs 0..2, the rest read 0 (DESIGN §6)."""
    x = np.zeros((len(counts), input_dim), np.int64)
    for j in range(min(3, input_dim)):
        x[:, j] = np.asarray(counts[:, j], np.int64) >> 2
    return x


def _counts(y: list) -> np.ndarray:
    return np.clip(np.array(y, np.int64) * 4, -32768, 32767)


def _carry(old_stream: StreamingModel, new) -> StreamingModel:
    b = StreamingModel(new)
    b.caches = [c.copy() for c in old_stream.caches]
    b.pointers = list(old_stream.pointers)
    return b


def check_one_switch(dac: np.ndarray, counts: np.ndarray, old, new, window: int = 2000) -> int:
    """Assert output jack 0 is ``old``'s golden output up to one sample and ``new``'s weights (same
    activation history) from it on, every sample; return that sample.  (The first sample that differs
    from ``old`` may come after the switch if both models agree for a while: try the samples before.)"""
    n = len(dac) - LATENCY_FRAMES
    x = board_inputs(counts[:n], old.input_dim)
    got = dac[LATENCY_FRAMES:, 0]
    a = StreamingModel(old)
    only_old = _counts([a.step(v)[0] for v in x])
    diff = np.flatnonzero(got != only_old)
    assert len(diff), "the output never left the old model"
    first = int(diff[0])
    a = StreamingModel(old)
    start = max(0, first - 64)
    for v in x[:start]:
        a.step(v)
    for swap in range(start, first + 1):
        b = _carry(a, new)
        if np.array_equal(got[swap: swap + window], _counts([b.step(v)[0] for v in x[swap: swap + window]])):
            b = _carry(a, new)
            np.testing.assert_array_equal(got[swap:], _counts([b.step(v)[0] for v in x[swap:]]))
            assert np.all(dac[:LATENCY_FRAMES] == 0) and np.all(dac[:, 1:] == 0)
            return swap
        a.step(x[swap])
    raise AssertionError(f"no single switch sample explains the output (first difference from the old "
                         f"model at sample {first})")
