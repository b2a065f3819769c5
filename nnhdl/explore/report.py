"""What a sweep leaves in ``--out``: the tables, the Pareto pictures and the recommendation.

Every file goes through :func:`nnhdl.model.write_atomically`, so inside the
command's transaction they appear together when the sweep succeeds (the
cache is written separately, durably, as points finish).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Sequence

from ..model import write_atomically

__all__ = ["columns", "write_tables", "TIMING_PHASES"]

TIMING_PHASES = ("train", "score", "plan", "mcu", "pnr")


def columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Every key of every row, in first-seen order (FPGA and Daisy rows have different figures)."""
    seen: dict[str, None] = {}
    for r in rows:
        for k in r:
            seen.setdefault(k, None)
    return list(seen)


def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    return str(v)


def _json_value(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def write_tables(out: Path, rows: Sequence[dict[str, Any]], seconds: dict[str, dict[str, float]]) -> None:
    """``results.csv`` and ``results.json`` (one object per point, every knob and figure named) and
    ``timings.csv`` (wall-clock seconds per phase: the only engine-dependent numbers, kept apart)."""
    cols = columns(rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_csv_value(r.get(c)) for c in cols])
    text = buf.getvalue()
    write_atomically(out / "results.csv", lambda f: f.write(text), mode="w")
    js = json.dumps({"columns": cols, "points": [{c: _json_value(r.get(c)) for c in cols} for r in rows]},
                    indent=1)
    write_atomically(out / "results.json", lambda f: f.write(js + "\n"), mode="w")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["point_id", *TIMING_PHASES])
    for r in rows:
        s = seconds.get(r["point_id"], {})
        w.writerow([r["point_id"], *(f"{s.get(p, 0.0):.3f}" for p in TIMING_PHASES)])
    timings = buf.getvalue()
    write_atomically(out / "timings.csv", lambda f: f.write(timings), mode="w")
