"""Argument types with ranges, shared by every command-line tool.

argparse calls these on the flag's text; a bad value becomes argparse's own
one-line usage error (exit status 2) naming the flag, before any work starts:
no ``--seed -1`` traceback from numpy, no ``--clock-mhz nan`` in a report.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Callable

from .outputs import writable

__all__ = ["ArgumentParser", "int_range", "positive_int", "nonneg_int", "seed", "finite_float", "positive_float",
           "byte_size", "output_dir"]


def int_range(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An integer in ``lo..hi`` (either bound may be open)."""

    def parse(text: str) -> int:
        try:
            v = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"{v} is outside {_bounds(lo, hi)}")
        return v

    parse.__name__ = "integer"
    return parse


def finite_float(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> Callable[[str], float]:
    """A finite number in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``); NaN and infinities refused."""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if (lo is not None and (v < lo or (lo_open and v == lo))) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"{v:g} is outside {'(' if lo_open else '['}"
                                             f"{'-inf' if lo is None else f'{lo:g}'}, "
                                             f"{'inf' if hi is None else f'{hi:g}'}]")
        return v

    parse.__name__ = "number"
    return parse


def _bounds(lo: int | None, hi: int | None) -> str:
    return f"{'-inf' if lo is None else lo}..{'inf' if hi is None else hi}"


#: At least 1 (steps, samples, batch ...), at most 2**31 - 1 (nothing here needs more).
positive_int = int_range(1, (1 << 31) - 1)
#: 0 or more.
nonneg_int = int_range(0, (1 << 31) - 1)
#: What numpy's and JAX's seeding accept.
seed = int_range(0, (1 << 32) - 1)
#: A positive finite number.
positive_float = finite_float(0.0, None, lo_open=True)


def byte_size(max_bytes: int = 1 << 40) -> Callable[[str], int]:
    """A size in bytes: ``131072``, ``128k``, ``0.5M``; positive, finite, at most ``max_bytes``."""

    def parse(text: str) -> int:
        t = text.strip().lower()
        mult = 1
        for suffix, m in (("kib", 1024), ("k", 1024), ("mib", 1 << 20), ("m", 1 << 20)):
            if t.endswith(suffix):
                t, mult = t[: -len(suffix)], m
                break
        try:
            v = float(t) * mult
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 131072, 128k, 0.5M)") from None
        if not math.isfinite(v) or not 1 <= v <= max_bytes:
            raise argparse.ArgumentTypeError(f"{text!r}: a size must be between 1 byte and {max_bytes:,} bytes")
        return int(v)

    parse.__name__ = "size"
    return parse


def output_dir(text: str) -> str:
    """A folder to write into: may be missing, but not an existing file or under an unwritable folder."""
    p = Path(text)
    if p.exists():
        if not p.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: exists and is not a folder")
        if not writable(p):
            raise argparse.ArgumentTypeError(f"{text}: cannot write in this folder")
        return text
    ancestor = Path(os.path.abspath(p)).parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {ancestor} is not a folder")
    if not writable(ancestor):
        raise argparse.ArgumentTypeError(f"{text}: cannot create it in {ancestor}")
    return text


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's error contract: a bad flag is one line on stderr, exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")
