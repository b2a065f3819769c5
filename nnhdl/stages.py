"""Run an FPGA build script one tool at a time, saying each stage and its elapsed time as it goes.

Both hardware builds end in a shell script of tool lines: Amaranth's
``build_top.sh`` (``nnhdl synth --pnr``: ``"$YOSYS" ...``) and LiteX's
``build_<name>.sh`` (``boards.pmod build``: ``yosys ...``, through the YoWASP
wrappers on PATH).  Running the lines one by one instead of the whole script
lets the user see yosys, nextpnr's packing / placement / routing (read from
its log as it grows) and ecppack, each with its time, rather than minutes of
silence.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Callable

__all__ = ["STAGE_NAMES", "PNR_MILESTONES", "script_steps", "run_stages"]

#: what each tool's stage is called (script names: Amaranth's variables and LiteX's commands)
STAGE_NAMES = {"yosys": "yosys: synthesis", "nextpnr-ecp5": "nextpnr", "ecppack": "ecppack: bitstream"}

#: nextpnr log lines that start a stage worth showing
PNR_MILESTONES = (("Packing IOs", "nextpnr: packing"), ("initial placer", "nextpnr: placement"),
                  ("Routing globals", "nextpnr: routing"),
                  ("Routing complete", "nextpnr: routed, timing analysis"))

_SETUP = ("#", "set ", ": ", "[ ")  # script lines that only set the shell up


def script_steps(script: str) -> list[tuple[str, str]]:
    """``(tool, shell line)`` for each tool line of a build script (tool: a key of :data:`STAGE_NAMES`)."""
    steps = []
    for line in script.splitlines():
        text = line.strip()
        if not text or text.startswith(_SETUP):
            continue
        word = text.split()[0].strip('"').lstrip("$").lower().replace("_", "-")
        if word not in STAGE_NAMES:
            raise RuntimeError(f"build script line not understood (expected one of {', '.join(STAGE_NAMES)}): "
                               f"{text[:120]}")
        steps.append((word, text))
    return steps


def run_stages(script: Path, cwd: Path, *, env: dict[str, str] | None = None, pnr_log: str,
               log: Callable[[str], None], poll: float = 1.0) -> dict[str, float]:
    """Run ``script``'s tool lines in ``cwd``; say each stage (and nextpnr's milestones, read from the
    log file ``pnr_log`` it writes in ``cwd``, every ``poll`` seconds) with elapsed time.  Returns
    seconds per stage name.

    A tool that fails raises :class:`RuntimeError` with the end of its output (kept in ``<tool>.out``).
    """
    cwd = Path(cwd)
    seconds: dict[str, float] = {}
    for tool, line in script_steps(Path(script).read_text()):
        name = STAGE_NAMES[tool]
        started = time.perf_counter()
        log(f"  {name} ...")
        out_path = cwd / f"{tool}.out"
        if tool == "nextpnr-ecp5":
            (cwd / pnr_log).unlink(missing_ok=True)  # a stale log would announce stages early
        with open(out_path, "w") as out_file:
            proc = subprocess.Popen(["sh", "-c", line], cwd=cwd, env={**os.environ, **(env or {})},
                                    stdout=out_file, stderr=subprocess.STDOUT)
        seen = 0
        while proc.poll() is None:
            time.sleep(poll)
            if tool == "nextpnr-ecp5" and (cwd / pnr_log).exists():
                text = (cwd / pnr_log).read_text(errors="replace")
                for k, (marker, label) in enumerate(PNR_MILESTONES):
                    if k >= seen and marker in text:
                        log(f"  {label} ({time.perf_counter() - started:.0f} s into nextpnr)")
                        seen = k + 1
        if proc.returncode != 0:
            raise RuntimeError(f"{name} exited with {proc.returncode}: "
                               f"{out_path.read_text(errors='replace')[-600:]}")
        seconds[name] = round(time.perf_counter() - started, 1)
        log(f"  {name} done in {seconds[name]:.1f} s")
    return seconds
