"""Model file → bitstream for a board, with a report and hard checks.

Steps: pick the model and clocks, check the network's initiation interval
against the budget (f_sys / fs) and derive D, the frames its latency adds
beyond the board's f+2 (``soc.core.extra_frames``), convert the Amaranth core
to Verilog, let LiteX write the SoC and its build script, run the YoWASP tools
stage by stage (``nnhdl.stages``), then parse nextpnr's log for utilisation
and Fmax.  Timing below a clock's target, a design that does not
fit, or a network too slow for the sample rate is an :class:`NnhdlError`
naming the figure — never a silently broken bitstream.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from nnhdl.errors import NnhdlError
from nnhdl.hdl.mult import ECP5_MULT18, FABRIC, Multiplier
from nnhdl.model import Model, write_atomically
from nnhdl.stages import run_stages

from .calibration import CalConstants
from .core import extra_frames
from .litex_soc import BOARDS, BoardInfo, PmodSoC, pmod_io
from .pmod_init import RATES
from .toolchain import install_wrappers, tool_versions

__all__ = ["BuildOptions", "BuildPlan", "plan", "core", "build", "parse_nextpnr_log", "BUILD_NAME", "default_model"]

BUILD_NAME = "nnhdl_pmod_soc"
CORE_NAME = "nnhdl_pmod"
MARGIN_CYCLES = 16  # clocking="cdc": CDC FIFOs and registers around the network, per sample
MCLK_MARGIN = 8  # clocking="mclk": calibration and core registers within the 256-cycle frame
CLOCKINGS = ("auto", "mclk", "cdc")


@dataclass
class BuildOptions:
    board: str = "ecpix5"
    model: Model | None = None
    model_path: str | None = None
    sample_rate: int | None = None
    sys_clock_mhz: float | None = None
    build_dir: Path = Path("build/pmod")
    lanes: object = None
    cal_path: str | None = None
    seed: int = 1
    clocking: str = "auto"  # "mclk" when a sample fits 256 cycles and no --sys-clock-mhz, else "cdc"
    run_tools: bool = True  # False: write the Verilog/scripts only (fast checks), no bitstream
    latency_in_period: bool = False  # plan and check for the whole latency in one period (f+2, D = 0)


def default_model() -> tuple[Model, str]:
    """The bundled fpga_qb model, or a random fpga_qb model until one is bundled."""
    from importlib import resources

    p = resources.files("nnhdl").joinpath("models/fpga_qb.npz")
    if p.is_file():
        return Model.load(str(p)), "nnhdl/models/fpga_qb.npz (bundled)"
    from nnhdl.configs import random_model

    return random_model("fpga_qb", seed=0), "random fpga_qb (seed 0; no bundled model yet)"


def parse_nextpnr_log(text: str) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, float]]]:
    """Utilisation ``{bel: {"used", "available"}}`` and ``{clock: {"fmax", "target"}}`` (last report)."""
    util: dict[str, dict[str, int]] = {}
    block = text.rsplit("Device utilisation:", 1)
    if len(block) == 2:
        for m in re.finditer(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)", block[1].split("\n\n")[0]):
            util[m.group(1)] = {"used": int(m.group(2)), "available": int(m.group(3))}
    fmax: dict[str, dict[str, float]] = {}
    for m in re.finditer(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz \((PASS|FAIL) at ([\d.]+) MHz\)", text):
        fmax[m.group(1)] = {"fmax_mhz": float(m.group(2)), "target_mhz": float(m.group(4))}
    return util, fmax


def _yosys_script(litex_ys: str, recipe) -> str:
    """LiteX's yosys script run the way ``nnhdl synth`` runs yosys (:mod:`nnhdl.yosys_recipes`): the recipe's
    settings around synth_ecp5 and ``check -assert`` after it, so a miswired netlist stops in yosys with its
    reason rather than in nextpnr.  (LiteX reads the Verilog deferred: ``hierarchy`` elaborates it first.)"""
    lines = litex_ys.splitlines()
    at = next((i for i, l in enumerate(lines) if l.startswith("synth_ecp5")), None)
    if at is None:
        raise NnhdlError("LiteX's yosys script has no synth_ecp5 line (a LiteX version nnhdl does not know)")
    synth = lines[at].replace("synth_ecp5", f"synth_ecp5 {recipe.synth_opts}", 1) if recipe.synth_opts else lines[at]
    after = [l.replace("-top top", f"-top {BUILD_NAME}") for l in recipe.after_lines()]
    lines[at:at + 1] = [f"hierarchy -top {BUILD_NAME}", *recipe.before_lines(), synth, *after]
    return "\n".join(lines) + "\n"


def _run_yosys_recipes(gw: Path, env: dict, log) -> dict[str, float]:
    """Run the LiteX build script stage by stage with the first yosys recipe; when yosys fails for one of
    yosys 0.70's known faults, again with the next."""
    from nnhdl.yosys_recipes import RECIPES, retryable

    script, ys, rpt = gw / f"build_{BUILD_NAME}.sh", gw / f"{BUILD_NAME}.ys", gw / f"{BUILD_NAME}.rpt"
    litex_ys = ys.read_text()
    for n, recipe in enumerate(RECIPES):
        (gw / "nextpnr.log").unlink(missing_ok=True)  # its presence below says yosys got through
        write_atomically(ys, lambda f: f.write(_yosys_script(litex_ys, recipe)), mode="w", durable=True)
        try:
            return run_stages(script, gw, env=env, pnr_log="nextpnr.log", log=log)
        except RuntimeError:
            tail = rpt.read_text(errors="replace")[-3000:] if rpt.exists() else ""  # yosys -l: its log
            if recipe is RECIPES[-1] or (gw / "nextpnr.log").exists() or not retryable(tail):
                raise
            log(f"  yosys: {recipe.name} failed (a known yosys 0.70 fault); trying {RECIPES[n + 1].name}")
    raise AssertionError("unreachable")


def _tool_errors(gw: Path) -> str:
    """The tools' ERROR lines (e.g. nextpnr's "no BELs remaining" when the design does not fit)."""
    lines = []
    for log in (gw / "nextpnr.log", gw / f"{BUILD_NAME}.rpt"):
        if log.exists():
            lines += [l.strip() for l in log.read_text(errors="replace").splitlines() if "ERROR" in l]
    if any("no BELs remaining" in l or "Unable to place" in l for l in lines):
        lines.insert(0, "the design does not fit the device")
    return (": " + " | ".join(lines[:4])) if lines else ""


def _clock_name(net: str) -> str:
    """nextpnr's global net name -> our domain name (the audio clock also drives the MCLK pin)."""
    if "mclk" in net or "audio" in net:
        return "audio"
    if "pll0" in net or "sys" in net:
        return "sys"
    return net


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class BuildPlan:
    """What a build makes, resolved and checked: model, rate, clocks, the network (shared by the board sim)."""

    board: BoardInfo
    model: Model
    model_desc: str
    rate: int
    cal: CalConstants
    net: object  # nnhdl.hdl.network.Network
    clocking: str  # "mclk" or "cdc"
    sys_mhz: float
    budget: int
    lane_plan: object = None  # nnhdl.hdl.planner.Plan, or None when --lanes was given
    delay_frames: int = 0  # D: the answer to input frame f goes out in frame f + 2 + D

    @property
    def latency_frames(self) -> int:
        """DAC frame k carries the answer to ADC frame k - latency_frames."""
        return 2 + self.delay_frames


def _plan_lanes(opts: BuildOptions, board, model: Model, rate: int):
    """``(lanes, plan or None, clocking)``: ``--lanes`` as given, else the planner's for this board.

    The plan's initiation interval (+ the margin) fits one sample period; its
    latency may span several (D frames beyond f+2), unless
    ``latency_in_period`` keeps it in one.  ``auto`` clocking runs on MCLK when
    some plan fits its 256 cycles and the part, else on the system clock with
    a crossing.
    """
    from nnhdl.hdl.planner import plan

    if opts.lanes is not None:
        return opts.lanes, None, opts.clocking
    args = dict(sample_rate=rate, banks=2, latency_in_period=opts.latency_in_period)
    if opts.clocking in ("auto", "mclk") and opts.sys_clock_mhz is None:
        try:
            p = plan(model, board.name, clock_mhz=256 * rate / 1e6, margin=MCLK_MARGIN, **args)
            return p.lanes, p, "mclk"
        except NnhdlError:
            if opts.clocking == "mclk":
                raise
    p = plan(model, board.name, clock_mhz=opts.sys_clock_mhz or board.default_sys_mhz, margin=MARGIN_CYCLES, **args)
    return p.lanes, p, "cdc" if opts.clocking == "auto" else opts.clocking


def plan(opts: BuildOptions, *, log: Callable[[str], None] = _say, multiplier: Multiplier = FABRIC) -> BuildPlan:
    """Resolve the options (model, rate, clocking) and check the network against the cycle budget.

    ``multiplier`` (:mod:`nnhdl.hdl.mult`) is how the lanes multiply: the default (flip-flops around ``*``)
    for the simulators, ``ECP5_MULT18`` for the bitstream (:func:`build`), where the DSP's own registers
    hold the operands and product; both have the same cycle-exact schedule.
    """
    if opts.board not in BOARDS:
        raise NnhdlError(f"unknown board {opts.board!r}; choose one of {', '.join(BOARDS)}")
    board = BOARDS[opts.board]
    if opts.model is not None:
        model, model_desc = opts.model, opts.model_path or "given model"
    elif opts.model_path:
        model, model_desc = Model.load(opts.model_path), opts.model_path
    else:
        model, model_desc = default_model()
    rate = opts.sample_rate or (model.sample_rate if model.sample_rate in RATES else 192000)
    if rate not in RATES:
        raise NnhdlError(f"--sample-rate {rate}: the pmod driver supports {' and '.join(map(str, RATES))}")
    cal = CalConstants.load(opts.cal_path) if opts.cal_path else CalConstants.default()
    from .core import ChannelMap

    ChannelMap.default(model)  # a bad meta["pmod"] is refused before anything is written
    from nnhdl.hdl.network import Network

    if opts.clocking not in CLOCKINGS:
        raise NnhdlError(f"--clocking {opts.clocking!r}: choose one of {', '.join(CLOCKINGS)}")
    lanes, lane_plan, clocking = _plan_lanes(opts, board, model, rate)
    cap = opts.latency_in_period
    # the plan's cache folds; with --lanes, unfolded caches under the latency cap (the shortest latency)
    folds = lane_plan.folds if lane_plan is not None else ([1] * len(model.layers) if cap else None)
    net = Network(model, lanes=lanes, banks=2, folds=folds, multiplier=multiplier)
    if clocking == "auto":
        fits = (net.latency if cap else net.initiation_interval) + MCLK_MARGIN <= 256
        clocking = "mclk" if fits and opts.sys_clock_mhz is None else "cdc"
    if clocking == "mclk":
        if opts.sys_clock_mhz is not None:
            raise NnhdlError("--clocking mclk runs everything at MCLK = 256 x the sample rate; drop --sys-clock-mhz")
        sys_mhz, budget, margin = 256 * rate / 1e6, 256, MCLK_MARGIN
    else:
        sys_mhz = opts.sys_clock_mhz or board.default_sys_mhz
        if not 10 <= sys_mhz <= 400:
            raise NnhdlError(f"--sys-clock-mhz {sys_mhz}: choose a system clock between 10 and 400 MHz")
        budget, margin = int(sys_mhz * 1e6 // rate), MARGIN_CYCLES
    how = ("use --clocking cdc with a faster --sys-clock-mhz, or add lanes" if clocking == "mclk"
           else "raise --sys-clock-mhz or add lanes")
    # A sample every initiation interval keeps up with the codec; the latency only delays the answer.
    if net.initiation_interval + margin > budget:
        raise NnhdlError(f"the network takes a sample every {net.initiation_interval} cycles (+{margin} around "
                         f"it) but {sys_mhz:g} MHz / {rate} Hz gives only {budget} cycles per sample; {how}")
    delay = extra_frames(net.latency, margin, budget)
    if cap and delay:
        raise NnhdlError(f"the network needs {net.latency} cycles from input to output (+{margin} around it) "
                         f"but {sys_mhz:g} MHz / {rate} Hz gives only {budget} cycles per sample, and "
                         f"--latency-in-period wants the answer in frame f+2; {how}, or drop --latency-in-period")
    mults, have = net.schedule.total("mult18"), board.part.mult18
    if mults > have:
        raise NnhdlError(f"design does not fit: the network needs {mults} MULT18X18D, the {board.name} has "
                         f"{have}; use fewer --lanes (e.g. --lanes {max(1, have // (2 * len(model.layers)))})")
    log(f"model: {model_desc}: {model.params} params, {model.macs_per_sample} MACs/sample")
    log(f"network: lanes {','.join(map(str, net.lanes))} ({'planned' if lane_plan else 'from --lanes'}), "
        f"{net.schedule.total('mult18')} MULT18X18D, a sample every {net.initiation_interval} cycles, latency "
        f"{net.latency}, of {budget} per sample at {sys_mhz:g} MHz, {rate} Hz "
        f"(clocking: {'everything on MCLK' if clocking == 'mclk' else 'system clock + CDC from MCLK'})")
    log(f"timing: the answer to input frame f goes out in frame f+{2 + delay} (D = {delay}: latency "
        f"{net.latency} + {margin} cycles over {budget} per sample)")

    return BuildPlan(board, model, model_desc, rate, cal, net, clocking, sys_mhz, budget, lane_plan, delay)


def core(p: BuildPlan):
    """The Amaranth top (:class:`soc.pmod.PmodTop`) that :func:`build` converts and LiteX instantiates."""
    from .pmod import PmodOptions, PmodTop

    return PmodTop(p.model, p.net, options=PmodOptions(sample_rate=p.rate, sys_clk_hz=p.sys_mhz * 1e6,
                                                       clocking=p.clocking, delay_frames=p.delay_frames),
                   cal=p.cal)


def build(opts: BuildOptions, *, log: Callable[[str], None] = _say) -> dict:
    """Build the bitstream; return the report (also written to ``report.json``)."""
    t0 = time.monotonic()
    p = plan(opts, log=log, multiplier=ECP5_MULT18)
    board, model, model_desc, rate, cal, net = p.board, p.model, p.model_desc, p.rate, p.cal, p.net
    clocking, sys_mhz, budget = p.clocking, p.sys_mhz, p.budget
    build_dir = Path(opts.build_dir).resolve()
    if str(build_dir).startswith("/tmp/") or str(build_dir) == "/tmp":
        log("note: build folder under /tmp: the YoWASP wrappers make paths relative to cope with it")

    from .pmod import to_verilog

    gw = build_dir / "gateware"
    gw.mkdir(parents=True, exist_ok=True)
    log("  Amaranth -> Verilog (the pmod core) ...")
    t = time.monotonic()
    top = core(p)
    text, ports = to_verilog(top, CORE_NAME)
    amaranth_seconds = round(time.monotonic() - t, 1)
    log(f"  Amaranth -> Verilog (the pmod core) done in {amaranth_seconds:.1f} s")
    vpath = gw / f"{CORE_NAME}.v"
    write_atomically(vpath, lambda f: f.write(text), mode="w", durable=True)  # LiteX reads it below

    env = install_wrappers(build_dir / "toolchain")
    platform_mod = importlib.import_module(f"litex_boards.platforms.{board.module}")
    platform = platform_mod.Platform(toolchain="trellis")
    platform.add_extension(pmod_io(board))
    from litex.soc.integration.builder import Builder

    log(f"building the LiteX SoC for {board.name} with yosys / nextpnr-ecp5 / ecppack (YoWASP) ...")
    import logging

    logging.basicConfig(level=logging.WARNING)  # before LiteX's own basicConfig(INFO): keep its tree quiet
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = env["PATH"]
    out = io.StringIO()
    stage_seconds: dict[str, float] = {"Amaranth -> Verilog (the pmod core)": amaranth_seconds}
    try:
        t = time.monotonic()
        with contextlib.redirect_stdout(out):
            soc = PmodSoC(platform, board, model, vpath, ports, sys_clk_hz=sys_mhz * 1e6, sample_rate=rate,
                          addr_width=net.addr_width, clocking=clocking)
            builder = Builder(soc, output_dir=str(build_dir), csr_csv=str(build_dir / "csr.csv"),
                              compile_software=False, compile_gateware=True)
            builder.build(build_name=BUILD_NAME, run=False, seed=opts.seed)  # the script: run below, stage by stage
        stage = "LiteX: SoC Verilog and build script"
        stage_seconds[stage] = round(time.monotonic() - t, 1)
        log(f"  {stage} done in {stage_seconds[stage]:.1f} s")
        if opts.run_tools:
            stage_seconds.update(_run_yosys_recipes(gw, env, log))
    except (OSError, RuntimeError, SystemExit) as e:
        with contextlib.suppress(OSError):
            (build_dir / "build.log").write_text(out.getvalue())
        raise NnhdlError(f"FPGA build failed ({type(e).__name__}: {e}){_tool_errors(gw)}; "
                         f"logs in {gw}") from None
    finally:
        os.environ["PATH"] = old_path
    (build_dir / "build.log").write_text(out.getvalue())
    pll_mhz = {k: round(v, 4) for k, v in soc.crg.actual_mhz.items()}
    actual_rate = pll_mhz.get("sys") if clocking == "mclk" else pll_mhz.get("audio")
    if not opts.run_tools:
        return {"clocking": clocking, "sys_mhz": sys_mhz, "cycle_budget": budget, "build_dir": str(build_dir),
                "pll_mhz": pll_mhz, "lanes": list(net.lanes), "latency_cycles": net.latency,
                "initiation_interval": net.initiation_interval, "delay_frames": p.delay_frames,
                "latency_frames": p.latency_frames,
                "plan": p.lane_plan.to_json() if p.lane_plan is not None else None}

    pnr_log = out.getvalue()
    for cand in (gw / f"{BUILD_NAME}.tim", gw / "nextpnr.log"):
        if cand.exists():
            pnr_log = cand.read_text()
    util, fmax_raw = parse_nextpnr_log(pnr_log)
    fmax = {("sys" if clocking == "mclk" else _clock_name(k)): v for k, v in fmax_raw.items()}
    bit = gw / f"{BUILD_NAME}.bit"
    if not bit.exists():
        raise NnhdlError(f"no bitstream produced; see {build_dir / 'build.log'}")
    audio_hz = 256 * rate
    report = {
        "board": board.name,
        "model": {"source": model_desc, "name": model.name, "fingerprint": model.fingerprint(),
                  "model_id": f"{model.model_id():016x}", "shape_id": f"{model.shape_id():016x}",
                  "params": model.params, "macs_per_sample": model.macs_per_sample,
                  "hardware_manifest": model.hardware_manifest()},
        "sample_rate": rate,
        "clocking": clocking,
        "clocks_mhz": {"sys": sys_mhz, "audio (MCLK)": audio_hz / 1e6},
        "pll_mhz": pll_mhz,  # what the PLLs actually make (MCLK within 0.2% of 256 fs)
        "actual_sample_rate": round(actual_rate * 1e6 / 256, 1) if actual_rate else None,
        "cycles_per_sample": net.cycles_per_sample,
        "initiation_interval": net.initiation_interval,
        "latency_cycles": net.latency,
        "cycle_budget": budget,
        "delay_frames": p.delay_frames,  # D
        "latency_frames": p.latency_frames,  # DAC frame k answers ADC frame k - latency_frames (= 2 + D)
        "lanes": list(net.lanes),
        "plan": p.lane_plan.to_json() if p.lane_plan is not None else None,
        "utilisation": util,
        "fmax": fmax,
        "tool_versions": tool_versions(),
        "bitstream": str(bit.relative_to(build_dir)),
        "csr_csv": "csr.csv",
        "stage_seconds": stage_seconds,
        "build_seconds": round(time.monotonic() - t0, 1),
    }
    write_atomically(build_dir / "report.json", lambda f: f.write(json.dumps(report, indent=1)), mode="w")
    check_report(report)
    return report


def check_report(report: dict) -> None:
    """Raise if the design does not fit or a clock misses its target."""
    util, fmax = report["utilisation"], report["fmax"]
    if not util or not fmax:
        raise NnhdlError("could not read utilisation/Fmax from the nextpnr log; see build.log")
    for bel, u in util.items():
        if u["used"] > u["available"]:
            raise NnhdlError(f"design does not fit: {bel} {u['used']}/{u['available']}")
    for clk, f in fmax.items():
        if f["fmax_mhz"] < f["target_mhz"]:
            raise NnhdlError(f"timing not met: clock '{clk}' reaches {f['fmax_mhz']:.1f} MHz, needs "
                             f"{f['target_mhz']:.1f} MHz; lower --sys-clock-mhz or use fewer lanes")


def summary_table(report: dict) -> str:
    u = report["utilisation"]
    rows = [("board", report["board"]), ("model", report["model"]["source"]),
            ("sample rate", f"{report['sample_rate']} Hz"),
            ("clocking", report["clocking"]),
            ("cycles/sample", f"{report['cycles_per_sample']} of {report['cycle_budget']}"),
            ("latency", f"{report['latency_cycles']} cycles: frame f out in frame f+{report['latency_frames']}")]
    for bel in ("MULT18X18D", "DP16KD", "TRELLIS_COMB", "TRELLIS_FF"):
        if bel in u:
            rows.append((bel, f"{u[bel]['used']}/{u[bel]['available']}"))
    for clk, f in report["fmax"].items():
        rows.append((f"Fmax {clk}", f"{f['fmax_mhz']:.1f} MHz (target {f['target_mhz']:.1f})"))
    rows.append(("build time", f"{report['build_seconds']} s"))
    w = max(len(r[0]) for r in rows)
    return "\n".join(f"{a:<{w}}  {b}" for a, b in rows)
