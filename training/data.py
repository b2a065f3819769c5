"""Training data for the waveshaper task (DESIGN §5): synthetic and recorded.

A :class:`Dataset` hands out batches of short windows ``x [B, T, input_dim]``
(model units, already quantised to the model's Q format, so the float32
values are exactly the mantissas the hardware sees) and targets ``y [B, T]``
for output channel 0.  Channel 0 of ``x`` is the triangle core wave,
channels 1 and 2 the embedding ``(e0, e1)``, any further channel is 0.

Everything is driven by a numpy ``Generator`` the caller seeds, so a batch
depends only on (seed, step): training can be resumed exactly and the
held-out test set (:func:`test_set`) never overlaps the training stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnhdl.audio_io import INT16_MAX, INT16_MIN, counts_to_mantissas
from nnhdl.errors import NnhdlError
from nnhdl.fixedpoint import QFormat
from nnhdl.inputs import expect_keys, json_int, read_json

__all__ = [
    "VOLT",
    "CORNER_SCALE",
    "CORNERS",
    "EDGES",
    "WAVES",
    "triangle",
    "wave",
    "crossfade",
    "blend",
    "embedding",
    "Dataset",
    "SyntheticData",
    "RecordingData",
    "load_data",
    "test_set",
    "TestSegment",
]

#: Model units per volt: 1.0 = 4.096 V.
VOLT = 1.0 / 4.096
#: +-5 V: amplitude of every wave and position of the embedding corners.
CORNER_SCALE = 5.0 * VOLT
F_MIN, F_MAX = 20.0, 2000.0

#: Embedding corners in units of CORNER_SCALE.
CORNERS: dict[str, tuple[float, float]] = {
    "sine": (-1.0, -1.0),
    "ramp": (-1.0, 1.0),
    "square": (1.0, 1.0),
    "zigzag": (1.0, -1.0),
}
#: Adjacent corner pairs (going round the square).
EDGES: tuple[tuple[str, str], ...] = (("sine", "ramp"), ("ramp", "square"), ("square", "zigzag"), ("zigzag", "sine"))
WAVES = tuple(CORNERS)
# Seeds of the held-out test set live in their own SeedSequence branch.
_TEST_KEY = 0x7E57


def triangle(phase: np.ndarray) -> np.ndarray:
    """``tri(phi) = 1 - 4|phi - 0.5|``: -1 at phase 0, +1 at 0.5."""
    return 1.0 - 4.0 * np.abs(phase - 0.5)


def wave(name: str, phase: np.ndarray) -> np.ndarray:
    """One of the four target shapes (amplitude 1) at ``phase`` in [0, 1)."""
    if name == "sine":
        return -np.cos(2.0 * np.pi * phase)
    if name == "ramp":
        return 2.0 * phase - 1.0
    if name == "square":
        return np.where(phase < 0.5, -1.0, 1.0)
    if name == "zigzag":
        return triangle(np.mod(2.0 * phase, 1.0))
    raise ValueError(f"unknown wave {name!r}")


def crossfade(alpha: np.ndarray | float, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Constant-power cross-fade: ``sin(alpha*pi/2)*a + sin((1-alpha)*pi/2)*b``."""
    alpha = np.asarray(alpha, dtype=np.float64)
    return np.sin(alpha * np.pi / 2) * a + np.sin((1.0 - alpha) * np.pi / 2) * b


def blend(e: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Target (amplitude 1) at any embedding ``e [..., 2]`` (corner units) for ``phase [..., T]``.

    DESIGN §5 fixes only corners and edges; inside the square nnhdl uses the
    *bilinear constant-power blend* of the four corners: with
    ``u = (e0 + 1) / 2`` and ``v = (e1 + 1) / 2`` each corner's wave is weighted
    by ``s(u) * s(v)``, where ``s`` is ``sin(.*pi/2)`` towards that corner's
    side and ``cos(.*pi/2)`` away from it.  The squared weights sum to 1
    (constant power), and on every edge the blend is exactly the DESIGN
    cross-fade, so the target is continuous over the whole square.
    """
    e = np.asarray(e, dtype=np.float64)
    u = (e[..., 0] + 1.0) * (np.pi / 4)
    v = (e[..., 1] + 1.0) * (np.pi / 4)
    out = np.zeros(np.broadcast_shapes(e.shape[:-1] + (1,), np.shape(phase)))
    for name, (c0, c1) in CORNERS.items():
        w = (np.sin(u) if c0 > 0 else np.cos(u)) * (np.sin(v) if c1 > 0 else np.cos(v))
        out += w[..., None] * wave(name, phase)
    return out


def embedding(alpha: np.ndarray | float, a: str, b: str) -> np.ndarray:
    """Embedding (model units) ``alpha * p_a + (1 - alpha) * p_b``, shape ``[..., 2]``."""
    alpha = np.asarray(alpha, dtype=np.float64)[..., None]
    return CORNER_SCALE * (alpha * np.asarray(CORNERS[a]) + (1.0 - alpha) * np.asarray(CORNERS[b]))


def _inputs(core: np.ndarray, emb: np.ndarray, input_dim: int, fmt: QFormat) -> np.ndarray:
    """Stack ``[B, T]`` core and ``[B, 2]`` embedding into quantised ``[B, T, input_dim]`` units."""
    b, t = core.shape
    x = np.zeros((b, t, input_dim), dtype=np.float64)
    x[:, :, 0] = core
    x[:, :, 1:3] = emb[:, None, :]
    return fmt.to_float(fmt.quantize(x))


def _check_input_dim(input_dim: int) -> None:
    if input_dim < 3:
        raise NnhdlError(
            f"the waveshaper task needs at least 3 input channels (core wave, e0, e1); the configuration has {input_dim}"
        )


class Dataset:
    """Source of training windows; see the module docstring."""

    input_dim: int
    sample_rate: int

    def batch(self, rng: np.random.Generator, batch: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass
class SyntheticData(Dataset):
    """The DESIGN §5 waveshaper: random phase, log-uniform frequency, random point of the square.

    ``corner_fraction`` of the windows sit exactly on a corner, ``edge_fraction``
    at a uniform point of a random edge (the DESIGN cross-fade) and the rest
    (if any) uniformly inside the square (the :func:`blend` target), so
    training covers every position of the embedding CVs a player can reach.
    """

    input_dim: int
    sample_rate: int
    fmt: QFormat = QFormat()
    corner_fraction: float = 0.3
    edge_fraction: float = 0.5

    def __post_init__(self) -> None:
        _check_input_dim(self.input_dim)
        if self.sample_rate < 2 * F_MAX * 2:
            raise NnhdlError(f"sample rate {self.sample_rate} Hz is too low for waves up to {F_MAX:.0f} Hz")
        if not (0.0 <= self.corner_fraction <= 1.0 and 0.0 <= self.edge_fraction <= 1.0):
            raise NnhdlError(f"corner fraction {self.corner_fraction} and edge fraction {self.edge_fraction} "
                             "must be in [0, 1]")

    def describe(self) -> str:
        return "synthetic"

    def points(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        """``[batch, 2]`` embeddings (corner units): corners, edge points and interior points."""
        corners = np.asarray([CORNERS[a] for a, _ in EDGES])
        ends = np.asarray([CORNERS[b] for _, b in EDGES])
        edge = rng.integers(0, len(EDGES), size=batch)
        alpha = rng.uniform(0.0, 1.0, size=batch)
        inside = rng.uniform(-1.0, 1.0, size=(batch, 2))
        kind = rng.uniform(size=batch)
        alpha = np.where(kind < self.corner_fraction, 1.0, alpha)
        on_square = alpha[:, None] * corners[edge] + (1.0 - alpha[:, None]) * ends[edge]
        return np.where((kind < self.corner_fraction + self.edge_fraction)[:, None], on_square, inside)

    def batch(self, rng: np.random.Generator, batch: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        freq = np.exp(rng.uniform(math.log(F_MIN), math.log(F_MAX), size=batch))
        phase0 = rng.uniform(0.0, 1.0, size=batch)
        return self.render_points(freq, phase0, self.points(rng, batch), length)

    def _phase(self, freq: np.ndarray, phase0: np.ndarray, length: int) -> np.ndarray:
        t = np.arange(length)
        return np.mod(phase0[:, None] + freq[:, None] * t[None, :] / self.sample_rate, 1.0)

    def render_points(self, freq: np.ndarray, phase0: np.ndarray, e: np.ndarray,
                      length: int) -> tuple[np.ndarray, np.ndarray]:
        """Windows at embeddings ``e [B, 2]`` (corner units) with the :func:`blend` target."""
        phase = self._phase(freq, phase0, length)
        core = CORNER_SCALE * triangle(phase)
        y = CORNER_SCALE * blend(e, phase)
        return _inputs(core, CORNER_SCALE * np.asarray(e, np.float64), self.input_dim, self.fmt).astype(np.float32), \
            y.astype(np.float32)

    def render(self, freq: np.ndarray, phase0: np.ndarray, edge: np.ndarray, alpha: np.ndarray,
               length: int) -> tuple[np.ndarray, np.ndarray]:
        """Windows on edges (one edge index and alpha per window), with the DESIGN cross-fade itself."""
        phase = self._phase(freq, phase0, length)
        core = CORNER_SCALE * triangle(phase)
        y = np.empty_like(phase)
        emb = np.empty((len(freq), 2))
        for n, (e, al) in enumerate(zip(edge, alpha)):
            a, b = EDGES[int(e)]
            y[n] = CORNER_SCALE * crossfade(al, wave(a, phase[n]), wave(b, phase[n]))
            emb[n] = embedding(al, a, b)
        return _inputs(core, emb, self.input_dim, self.fmt).astype(np.float32), y.astype(np.float32)


@dataclass
class TestSegment:
    """One held-out window: where it sits in the embedding space and its samples."""

    label: str  # corner name, "a/b@alpha" or "(e0,e1)" inside the square
    alpha: float  # nan inside the square
    edge: int  # -1 inside the square
    freq: float
    x: np.ndarray  # [T, input_dim] model units (quantised)
    y: np.ndarray  # [T] target, model units
    phase0: float = 0.0  # phase of the first sample (the core wave is a triangle of this phase)


def test_set(input_dim: int, sample_rate: int, fmt: QFormat = QFormat(), *, per_point: int = 12,
             length: int = 4096, alphas: tuple[float, ...] = (0.5,),
             interior: tuple[tuple[float, float], ...] = ()) -> list[TestSegment]:
    """The deterministic held-out set: every corner, points at ``alphas`` on every edge
    and the ``interior`` embeddings (corner units, :func:`blend` target).

    Its seed is a fixed SeedSequence branch that the training stream never
    uses, so no test window ever appears in training.  The interior points
    draw from a branch of their own, so adding them changes no other window.
    """
    data = SyntheticData(input_dim, sample_rate, fmt)
    rng = np.random.default_rng(np.random.SeedSequence(_TEST_KEY, spawn_key=(1,)))
    points: list[tuple[str, int, float]] = []
    for e, (a, _) in enumerate(EDGES):
        points.append((a, e, 1.0))
    for e, (a, b) in enumerate(EDGES):
        for al in alphas:
            points.append((f"{a}/{b}@{al:g}", e, float(al)))
    out = []
    for label, e, al in points:
        freq = np.exp(rng.uniform(math.log(F_MIN), math.log(F_MAX), size=per_point))
        phase0 = rng.uniform(0.0, 1.0, size=per_point)
        x, y = data.render(freq, phase0, np.full(per_point, e), np.full(per_point, al), length)
        for n in range(per_point):
            out.append(TestSegment(label, al, e, float(freq[n]), x[n], y[n], float(phase0[n])))
    rng = np.random.default_rng(np.random.SeedSequence(_TEST_KEY, spawn_key=(2,)))
    for e0, e1 in interior:
        freq = np.exp(rng.uniform(math.log(F_MIN), math.log(F_MAX), size=per_point))
        phase0 = rng.uniform(0.0, 1.0, size=per_point)
        x, y = data.render_points(freq, phase0, np.tile([e0, e1], (per_point, 1)), length)
        for n in range(per_point):
            out.append(TestSegment(f"({e0:+g},{e1:+g})", float("nan"), -1, float(freq[n]), x[n], y[n],
                                   float(phase0[n])))
    return out


# -- recordings ------------------------------------------------------------

_SILENT_PEAK = 0.01  # model units (~41 mV): quieter than that is an unplugged jack
_CLIP_FRACTION = 0.001  # more samples than this at full scale means the ADC clipped


@dataclass
class _Recording:
    path: Path
    core: np.ndarray  # [T] model units
    targets: dict[tuple[float, float], np.ndarray]  # corner -> [T] model units


class RecordingData(Dataset):
    """Multi-channel WAV recordings of a real oscillator, one JSON sidecar each.

    ``NAME.wav`` holds the core wave and the target waves recorded at the
    same time; ``NAME.json`` names the channels::

        {"core": 0,
         "targets": [{"channel": 1, "corner": [-1, -1]}, {"channel": 2, "corner": [-1, 1]}, ...]}

    Corners are in units of the +-5 V corner scale and may be any point of
    the square (a target recorded at ``[1, 0]`` is the square/zigzag
    midpoint).  Windows are drawn from the first ``1 - holdout`` of every
    file (the rest is for evaluation), on a recorded point or cross-faded
    between two adjacent recorded corners of the square.
    """

    def __init__(self, folder: str | Path, input_dim: int, sample_rate: int, fmt: QFormat = QFormat(),
                 holdout: float = 0.2, corner_fraction: float = 0.5) -> None:
        _check_input_dim(input_dim)
        self.folder = Path(folder)
        self.input_dim = input_dim
        self.sample_rate = sample_rate
        self.fmt = fmt
        self.holdout = holdout
        self.corner_fraction = corner_fraction
        if not self.folder.is_dir():
            raise NnhdlError(f"{self.folder}: recordings folder does not exist (give --data synthetic or a folder of WAV files)")
        wavs = sorted(self.folder.glob("*.wav"))
        if not wavs:
            raise NnhdlError(f"{self.folder}: no .wav recordings in this folder")
        self.recordings = [self._load(p) for p in wavs]
        self.pairs: list[tuple[int, tuple[float, float], tuple[float, float] | None]] = []
        for n, r in enumerate(self.recordings):
            corners = list(r.targets)
            for c in corners:
                self.pairs.append((n, c, None))
            # The DESIGN cross-fade is defined between adjacent corners of the square only;
            # a target recorded elsewhere (an edge or interior point) is trained as recorded.
            square = [c for c in corners if all(abs(v) == 1.0 for v in c)]
            for i, a in enumerate(square):
                for b in square[i + 1:]:
                    if sum(p != q for p, q in zip(a, b)) == 1:
                        self.pairs.append((n, a, b))

    def describe(self) -> str:
        return f"recordings:{self.folder.name} ({len(self.recordings)} files)"

    def _load(self, path: Path) -> _Recording:
        from nnhdl.audio_io import read_wav_counts

        side = path.with_suffix(".json")
        if not side.is_file():
            raise NnhdlError(f"{path}: no sidecar {side.name} naming its channels (core and targets with corners)")
        core_ch, targets = _read_sidecar(side)
        rate, counts = read_wav_counts(path)
        named = 1 + len(targets)
        if counts.shape[1] != named:
            raise NnhdlError(f"{path}: has {counts.shape[1]} channels but {side.name} names {named} "
                             f"(core + {len(targets)} targets)")
        for ch, _ in [(core_ch, None)] + targets:
            if not 0 <= ch < counts.shape[1]:
                raise NnhdlError(f"{side}: channel {ch} does not exist in {path.name} (channels 0..{counts.shape[1] - 1})")
        if rate != self.sample_rate:
            raise NnhdlError(f"{path}: recorded at {rate} Hz but the model runs at {self.sample_rate} Hz; "
                             "record at the model's rate or pass --sample-rate")
        units = self.fmt.to_float(counts_to_mantissas(counts))
        for ch in [core_ch] + [c for c, _ in targets]:
            clipped = np.mean((counts[:, ch] >= INT16_MAX) | (counts[:, ch] <= INT16_MIN))
            if clipped > _CLIP_FRACTION:
                raise NnhdlError(f"{path}: channel {ch} is clipped ({100 * clipped:.1f}% of samples at full scale); "
                                 "lower the level and record again")
            if np.max(np.abs(units[:, ch])) < _SILENT_PEAK:
                raise NnhdlError(f"{path}: channel {ch} is silent (peak below {_SILENT_PEAK * 4.096 * 1000:.0f} mV); "
                                 "is the cable plugged in?")
        return _Recording(path, units[:, core_ch], {c: units[:, ch] for ch, c in targets})

    def held_out(self) -> list[tuple[str, tuple[float, float], np.ndarray, np.ndarray]]:
        """``(file name, corner, x [T, input_dim] units, target [T])`` for every recorded corner's held-out part."""
        out = []
        for r in self.recordings:
            n = len(r.core)
            lo = int(n * (1.0 - self.holdout))
            for corner, target in r.targets.items():
                emb = CORNER_SCALE * np.asarray(corner, dtype=np.float64)[None, :]
                x = _inputs(r.core[None, lo:], emb, self.input_dim, self.fmt)[0]
                out.append((r.path.name, corner, x, target[lo:]))
        return out

    def _span(self, r: _Recording, length: int, train: bool) -> tuple[int, int]:
        n = len(r.core)
        split = int(n * (1.0 - self.holdout))
        lo, hi = (0, split) if train else (split, n)
        if hi - lo < length:
            raise NnhdlError(f"{r.path}: too short for {length}-sample windows ({hi - lo} samples in the "
                             f"{'training' if train else 'held-out'} part)")
        return lo, hi

    def batch(self, rng: np.random.Generator, batch: int, length: int, train: bool = True) -> tuple[np.ndarray, np.ndarray]:
        core = np.empty((batch, length))
        y = np.empty((batch, length))
        emb = np.empty((batch, 2))
        corners = [p for p in self.pairs if p[2] is None]
        for n in range(batch):
            if rng.uniform() < self.corner_fraction or len(corners) == len(self.pairs):
                rec, a, b = corners[rng.integers(len(corners))]
                alpha = 1.0
            else:
                edges = [p for p in self.pairs if p[2] is not None]
                rec, a, b = edges[rng.integers(len(edges))]
                alpha = float(rng.uniform())
            r = self.recordings[rec]
            lo, hi = self._span(r, length, train)
            s = int(rng.integers(lo, hi - length + 1))
            core[n] = r.core[s:s + length]
            ta = r.targets[a][s:s + length]
            y[n] = ta if b is None else crossfade(alpha, ta, r.targets[b][s:s + length])
            pb = np.asarray(b if b is not None else a)
            emb[n] = CORNER_SCALE * (alpha * np.asarray(a) + (1 - alpha) * pb)
        return _inputs(core, emb, self.input_dim, self.fmt).astype(np.float32), y.astype(np.float32)


_SIDECAR_EXAMPLE = '{"core": 0, "targets": [{"channel": 1, "corner": [-1, -1]}, ...]}'


def _read_sidecar(side: Path) -> tuple[int, list[tuple[int, tuple[float, float]]]]:
    """``(core channel, [(channel, corner)])`` from a recording's JSON sidecar, every field checked."""
    meta = read_json(side, "sidecar")
    if not isinstance(meta, dict) or "core" not in meta or not isinstance(meta.get("targets"), list):
        raise NnhdlError(f"{side}: malformed sidecar; expected {_SIDECAR_EXAMPLE}")
    expect_keys(meta, ("core", "targets"), str(side))
    core_ch = json_int(meta["core"], f"{side}: core", 0, 255)
    targets = []
    for n, t in enumerate(meta["targets"]):
        where = f"{side}: targets[{n}]"
        if not isinstance(t, dict) or "channel" not in t or "corner" not in t:
            raise NnhdlError(f"{where}: malformed; expected {{\"channel\": 1, \"corner\": [-1, -1]}}")
        expect_keys(t, ("channel", "corner"), where)
        corner = t["corner"]
        ok = isinstance(corner, list) and len(corner) == 2 and all(
            not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and abs(v) <= 1.0
            for v in corner)
        if not ok:
            raise NnhdlError(f"{where}.corner: {corner!r} of channel {t['channel']!r} must be two numbers in [-1, 1]")
        targets.append((json_int(t["channel"], f"{where}.channel", 0, 255), (float(corner[0]), float(corner[1]))))
    if not targets:
        raise NnhdlError(f"{side}: lists no target channels")
    return core_ch, targets


def load_data(name: str, input_dim: int, sample_rate: int, fmt: QFormat = QFormat()) -> Dataset:
    """``synthetic`` or a folder of recordings."""
    if name == "synthetic":
        return SyntheticData(input_dim, sample_rate, fmt)
    return RecordingData(name, input_dim, sample_rate, fmt)
