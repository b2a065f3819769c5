"""Reading untrusted input files: one place per kind, shared by every entry point.

* :func:`input_file` -- exists, is a regular file (not ``/dev/zero``), not too big;
* :func:`read_json` / :func:`parse_json` -- strict UTF-8, bounded size and
  nesting, no ``NaN``/``Infinity``, duplicate keys refused;
* :func:`check_npz` -- zip members' declared sizes and array headers checked
  before anything is decompressed;
* :func:`check_npy` -- a ``.npy`` header checked before its data is read;
* :func:`integers_in_range` / :func:`finite` -- values checked in their
  original dtype, before any cast can wrap or turn NaN into a number.

Each raises :class:`~nnhdl.errors.NnhdlError` (or the subclass the caller
passes) with one line naming the file and the field.
"""

from __future__ import annotations

import json
import math
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import NnhdlError
from .limits import MAX_JSON_BYTES, MAX_JSON_DEPTH

__all__ = ["input_file", "read_json", "parse_json", "check_npz", "check_npy", "integers_in_range", "finite",
           "expect_keys", "json_int", "json_number"]


def input_file(path: str | os.PathLike, what: str, max_bytes: int, error: type[NnhdlError] = NnhdlError) -> Path:
    """``path`` if it is a regular file of at most ``max_bytes``; else one clear error."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except OSError as e:
        raise error(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{path}: is a folder, not a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: not a regular file (a device or pipe cannot be the {what})")
    if st.st_size > max_bytes:
        raise error(f"{path}: {st.st_size:,} bytes is above the {max_bytes:,}-byte limit for a {what} "
                    "(README: Limits)")
    if not os.access(path, os.R_OK):
        raise error(f"{path}: cannot read the {what} (permission denied)")
    return path


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"key {k!r} appears twice")
        d[k] = v
    return d


def _depth(text: str) -> int:
    """Deepest bracket nesting outside strings (checked before json.loads recurses)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json(text: str, where: str, error: type[NnhdlError] = NnhdlError) -> Any:
    """Strict JSON: bounded nesting, no NaN/Infinity, no duplicate keys, valid Unicode."""
    if _depth(text) > MAX_JSON_DEPTH:
        raise error(f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        obj = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as e:
        raise error(f"{where}: not valid JSON ({_short(e)})") from None
    try:  # "\udc80" escapes decode to lone surrogates, which nothing downstream can print or write
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise error(f"{where}: holds a string that is not valid Unicode (a lone surrogate escape such as \\udc80)") \
            from None
    return obj


def read_json(path: str | os.PathLike, what: str, error: type[NnhdlError] = NnhdlError,
              max_bytes: int = MAX_JSON_BYTES) -> Any:
    """A JSON file, read strictly (see :func:`parse_json`)."""
    path = input_file(path, what, max_bytes, error)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise error(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{path}: the {what} is not UTF-8 text (byte {e.start})") from None
    return parse_json(text, str(path), error)


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 200 else text[:200] + "..."


def expect_keys(d: dict, allowed: tuple[str, ...] | set[str], where: str,
                error: type[NnhdlError] = NnhdlError) -> None:
    """Refuse unknown keys: a misspelt field must not be silently ignored."""
    unknown = sorted(set(d) - set(allowed))
    if unknown:
        raise error(f"{where}.{unknown[0]}: unknown field (known: {', '.join(sorted(allowed))})")


def json_int(v: Any, where: str, lo: int | None = None, hi: int | None = None,
             error: type[NnhdlError] = NnhdlError) -> int:
    """A JSON integer (not bool, not 2.5, not "2") within ``lo..hi``."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise error(f"{where}: must be an integer, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise error(f"{where}: {v} is outside {lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}")
    return v


def json_number(v: Any, where: str, lo: float | None = None, hi: float | None = None,
                error: type[NnhdlError] = NnhdlError) -> float:
    """A finite JSON number (not bool, not a string) within ``lo..hi``."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise error(f"{where}: must be a finite number, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise error(f"{where}: {v} is outside [{lo}, {hi}]")
    return float(v)


def check_npy(header: tuple[tuple[int, ...], bool, np.dtype], where: str, available: int,
              error: type[NnhdlError] = NnhdlError) -> None:
    """The array a .npy header announces must be plain numbers and fit in the bytes that follow it."""
    shape, _, dtype = header
    if dtype.hasobject:
        raise error(f"{where}: holds Python objects (pickled); only plain numeric arrays are read")
    need = math.prod(shape) * dtype.itemsize
    if need > available:
        raise error(f"{where}: header announces {need:,} bytes of data but only {available:,} follow; "
                    "truncated or forged")


def read_npy_header(f: Any, where: str, error: type[NnhdlError] = NnhdlError):
    """``(shape, fortran_order, dtype)`` of an open .npy stream, positioned after its header."""
    from numpy.lib import format as npformat

    try:
        version = npformat.read_magic(f)
        if version == (1, 0):
            return npformat.read_array_header_1_0(f)
        if version in ((2, 0), (3, 0)):
            return npformat.read_array_header_2_0(f)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, zipfile.BadZipFile) as e:
        raise error(f"{where}: not a .npy array ({_short(e)})") from None
    raise error(f"{where}: unsupported .npy version {version}")


def check_npz(path: Path, max_total: int, max_members: int, error: type[NnhdlError] = NnhdlError) -> None:
    """Bound an .npz before numpy decompresses it: member count, declared sizes, array headers."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            if len(infos) > max_members:
                raise error(f"{path}: {len(infos)} arrays is more than the {max_members} this file may hold")
            total = sum(i.file_size for i in infos)
            if total > max_total:
                raise error(f"{path}: members decompress to {total:,} bytes, above the limit of {max_total:,} "
                            "(README: Limits)")
            for info in infos:
                with z.open(info) as f:
                    header = read_npy_header(f, f"{path}: {info.filename}", error)
                    check_npy(header, f"{path}: {info.filename}", info.file_size - f.tell(), error)
    except error:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
        raise error(f"{path}: cannot read the npz file ({type(e).__name__}: {_short(e)}); truncated or corrupt?") \
            from None


def integers_in_range(a: np.ndarray, lo: int, hi: int) -> bool:
    """True when every value of an integer array lies in ``lo..hi``, compared in its own dtype.

    ``astype(int64)`` would first turn a uint64 2**64-1 into -1; comparing
    against bounds clipped to the dtype's own range cannot wrap.
    """
    a = np.asarray(a)
    if a.size == 0:
        return True
    info = np.iinfo(a.dtype)
    if hi < info.min or lo > info.max:
        return False
    lo_d = a.dtype.type(max(lo, info.min))
    hi_d = a.dtype.type(min(hi, info.max))
    return bool(np.all((a >= lo_d) & (a <= hi_d)))


def first_outside(a: np.ndarray, lo: int, hi: int) -> tuple[tuple[int, ...], int]:
    """Index and exact value of the first element outside ``lo..hi`` (see :func:`integers_in_range`)."""
    a = np.asarray(a)
    info = np.iinfo(a.dtype)
    lo_d = a.dtype.type(max(lo, info.min)) if lo <= info.max else None
    hi_d = a.dtype.type(min(hi, info.max)) if hi >= info.min else None
    bad = np.ones(a.shape, bool) if lo_d is None or hi_d is None else (a < lo_d) | (a > hi_d)
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    return idx, int(a[idx])


def finite(a: np.ndarray, where: str, error: type[NnhdlError] = NnhdlError) -> np.ndarray:
    """A real, finite float64 array; NaN, infinities and complex values are named and refused."""
    a = np.asarray(a)
    if a.dtype.kind == "c":
        raise error(f"{where}: complex values (dtype {a.dtype}); real numbers expected")
    if a.dtype.kind not in "biuf":
        raise error(f"{where}: dtype {a.dtype} is not numeric")
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        if np.any(bad):
            idx = [int(i) for i in np.argwhere(bad)[0]]
            raise error(f"{where}{idx}: {float(a[tuple(idx)])!r} is not a finite number")
    return a.astype(np.float64)
