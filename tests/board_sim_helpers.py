"""Helpers for the whole-SoC simulation tests: a shared build cache, the host CLI's output,
UARTBone frames as the FPGA received them, and the golden model across a bank swap."""

from __future__ import annotations

import numpy as np

from nnhdl.reference import StreamingModel, evaluate


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


def uartbone_frames(data: bytes) -> list[tuple[int, int]]:
    """``(command, word count)`` of the UARTBone frames in ``data`` (1/3 write, 2/4 read), written from
    LiteX's protocol: command, word count, 32-bit address, then 4 bytes per word for writes only."""
    frames, i = [], 0
    while i + 6 <= len(data):
        cmd, n = data[i], data[i + 1]
        frames.append((cmd, n))
        i += 6 + (4 * n if cmd in (1, 3) else 0)
    return frames


def uartbone_commands(data: bytes) -> list[int]:
    return [cmd for cmd, _ in uartbone_frames(data)]


def board_inputs(counts: np.ndarray, input_dim: int) -> np.ndarray:
    """Jack counts [T, 4] -> network inputs: jacks 0..2 >> 2 feed inputs 0..2, the rest read 0 (DESIGN §6)."""
    x = np.zeros((len(counts), input_dim), np.int64)
    for j in range(min(3, input_dim)):
        x[:, j] = np.asarray(counts[:, j], np.int64) >> 2
    return x


def _counts(y: list) -> np.ndarray:
    return np.clip(np.array(y, np.int64) * 4, -32768, 32767)


def check_one_switch(dac: np.ndarray, counts: np.ndarray, old, new, latency: int, window: int = 500) -> int:
    """Assert output jack 0 is ``old``'s golden output up to one sample and ``new``'s weights (same
    activation history) from it on, every sample, ``latency`` frames later; return that sample.
    (The first sample that differs from ``old`` may come after the switch if both models agree for
    a while: try the samples before.)"""
    n = len(dac) - latency
    x = board_inputs(counts[:n], old.input_dim)
    got = dac[latency:, 0]
    only_old = _counts(evaluate(old, x)[:, 0])
    diff = np.flatnonzero(got != only_old)
    assert len(diff), "the output never left the old model"
    first = int(diff[0])
    lo = max(0, first - 64)
    # streaming from zero history is exact once every layer's cache has been refilled
    a = StreamingModel(old)
    for v in x[max(0, lo - sum(l.cache_length for l in old.layers)): lo]:
        a.step(v)
    states = []
    for swap in range(lo, first + 1):
        states.append(([c.copy() for c in a.caches], list(a.pointers)))
        a.step(x[swap])
    for swap in range(first, lo - 1, -1):  # the likeliest first
        caches, pointers = states[swap - lo]
        b = StreamingModel(new)
        b.caches, b.pointers = [c.copy() for c in caches], list(pointers)
        t, end = swap, min(n, swap + window)
        while t < end and _counts([b.step(x[t])[0]])[0] == got[t]:
            t += 1
        if t == end:
            while t < n:  # the rest, every sample
                assert _counts([b.step(x[t])[0]])[0] == got[t], f"sample {t} after the switch at {swap}"
                t += 1
            assert np.all(dac[:latency] == 0) and np.all(dac[:, 1:] == 0)
            return swap
    raise AssertionError(f"no single switch sample explains the output (first difference from the old "
                         f"model at sample {first})")
