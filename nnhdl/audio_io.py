"""Reading and writing sample streams: ``.npy`` mantissas and ``.wav`` audio.

``.npy`` files hold Q-format mantissas, shape ``[samples, channels]``.
``.wav`` samples are eurorack-pmod counts (float +-1.0 <-> int16 full scale);
as in the hardware, counts are shifted right by 2 into Q4.12 mantissas on the
way in and shifted left by 2, saturated, on the way out.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import NnhdlError
from .fixedpoint import QFormat
from .inputs import check_npy, finite, first_outside, input_file, integers_in_range, read_npy_header
from .limits import MAX_DIM, MAX_SAMPLE_FILE_BYTES, MAX_SAMPLE_RATE, MAX_SAMPLE_VALUES
from .outputs import write_atomically

__all__ = ["read_samples", "read_wav_counts", "write_samples", "counts_to_mantissas", "mantissas_to_counts", "COUNT_SHIFT"]

COUNT_SHIFT = 2  # 4 counts/mV calibrated sample >> 2 == Q4.12 mantissa (1.0 = 4.096 V)
INT16_MIN, INT16_MAX = -32768, 32767


def counts_to_mantissas(counts: np.ndarray) -> np.ndarray:
    """int16 pmod counts -> mantissas (arithmetic shift right by 2, as the hardware)."""
    return np.asarray(counts, dtype=np.int64) >> COUNT_SHIFT


def mantissas_to_counts(m: np.ndarray) -> np.ndarray:
    """Mantissas -> int16 pmod counts (shift left by 2, saturate)."""
    return np.clip(np.asarray(m, dtype=np.int64) << COUNT_SHIFT, INT16_MIN, INT16_MAX).astype(np.int16)


def _wav_to_counts(data: np.ndarray, path: Path) -> np.ndarray:
    if data.dtype == np.int16:
        return data.astype(np.int64)
    if data.dtype == np.int32:  # 24/32-bit PCM: keep the top 16 bits
        return data.astype(np.int64) >> 16
    if data.dtype == np.uint8:
        return (data.astype(np.int64) - 128) << 8
    if np.issubdtype(data.dtype, np.floating):
        data = finite(data, f"{path}: sample")
        return np.clip(np.floor(data.astype(np.float64) * 32768.0), INT16_MIN, INT16_MAX).astype(np.int64)
    raise NnhdlError(f"{path}: unsupported WAV sample type {data.dtype}")


def read_wav_counts(path: str | os.PathLike) -> tuple[int, np.ndarray]:
    """A WAV file as ``(rate, counts [samples, channels] int64)`` in pmod counts."""
    from scipy.io import wavfile

    path = input_file(path, "WAV file", MAX_SAMPLE_FILE_BYTES)
    try:
        rate, data = wavfile.read(path)
    except Exception as e:
        raise NnhdlError(f"{path}: cannot read the WAV file ({' '.join(str(e).split())})") from None
    if data.ndim > 2 or data.size > MAX_SAMPLE_VALUES:
        raise NnhdlError(f"{path}: {data.size:,} samples is above the limit of {MAX_SAMPLE_VALUES:,} (README: Limits)")
    if data.ndim == 1:
        data = data[:, None]
    return int(rate), _wav_to_counts(data, path)


def read_samples(path: str | os.PathLike, fmt: QFormat, channels: int | None = None) -> tuple[np.ndarray, int | None]:
    """Read ``[samples, channels]`` mantissas; return them and the WAV rate (None for .npy)."""
    path = input_file(path, "input file", MAX_SAMPLE_FILE_BYTES)
    rate = None
    if path.suffix.lower() == ".npy":
        with path.open("rb") as f:
            header = read_npy_header(f, str(path))
            check_npy(header, str(path), path.stat().st_size - f.tell())
        if not np.issubdtype(header[2], np.integer):
            raise NnhdlError(f"{path}: dtype {header[2]} is not integer; .npy inputs hold {fmt} mantissas")
        try:
            data = np.load(path, allow_pickle=False)
        except Exception as e:
            raise NnhdlError(f"{path}: cannot read the .npy file ({' '.join(str(e).split())})") from None
        if data.ndim == 1:
            data = data[:, None]
        if data.ndim == 2 and not integers_in_range(data, fmt.min_int, fmt.max_int):
            idx, bad = first_outside(data, fmt.min_int, fmt.max_int)
            raise NnhdlError(f"{path}: value {bad} at sample {idx[0]}, channel {idx[1]} is outside {fmt} "
                             f"({fmt.min_int}..{fmt.max_int})")
        m = data.astype(np.int64)
    elif path.suffix.lower() == ".wav":
        rate, counts = read_wav_counts(path)
        m = counts_to_mantissas(counts)
    else:
        raise NnhdlError(f"{path}: unknown input type {path.suffix!r}; use .npy (mantissas) or .wav (pmod counts)")
    if m.ndim != 2:
        raise NnhdlError(f"{path}: expected [samples, channels], got shape {list(m.shape)}")
    if channels is not None and m.shape[1] != channels:
        raise NnhdlError(f"{path}: has {m.shape[1]} channels but the model expects {channels}")
    if not fmt.fits(m):
        raise NnhdlError(f"{path}: values outside {fmt} ({fmt.min_int}..{fmt.max_int})")
    return m, rate


def write_samples(path: str | os.PathLike, m: np.ndarray, sample_rate: int) -> None:
    """Write mantissas as ``.npy`` (int16) or ``.wav`` (int16 counts), atomically."""
    path = Path(path)
    m = np.asarray(m, dtype=np.int64)
    suffix = path.suffix.lower()
    if suffix == ".wav" and not (0 < int(sample_rate) <= MAX_SAMPLE_RATE and m.ndim == 2 and m.shape[1] <= MAX_DIM):
        raise NnhdlError(f"{path}: a .wav holds at most {MAX_DIM} channels at 1..{MAX_SAMPLE_RATE} Hz; "
                         f"got {m.shape[-1]} channels at {sample_rate} Hz (use .npy)")
    if suffix == ".npy":
        fits16 = m.size == 0 or (m.min() >= INT16_MIN and m.max() <= INT16_MAX)
        write_atomically(path, lambda f: np.save(f, m.astype(np.int16 if fits16 else np.int32)))
    elif suffix == ".wav":
        from scipy.io import wavfile

        counts = mantissas_to_counts(m)
        write_atomically(path, lambda f: wavfile.write(f, int(sample_rate), counts))
    else:
        raise NnhdlError(f"{path}: unknown output type {path.suffix!r}; use .npy or .wav")
