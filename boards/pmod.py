"""eurorack-pmod boards: ``python -m boards.pmod build|load-weights|status``.

build         model file -> bitstream + report.json + csr.csv (YoWASP tools, no system toolchain)
              --flash programs the board with openFPGALoader afterwards
load-weights  new weights into the running network over UARTBone, no resynthesis
status        the network's counters (cycles/sample, overruns, saturations, ...)
sim           the same SoC in Verilator, no board needed: WAV through the simulated codec
              pins, the UART on a TCP port (use status / load-weights with --port socket://...)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from nnhdl.argtypes import ArgumentParser, finite_float, int_range, nonneg_int, output_dir
from nnhdl.errors import NnhdlError, run_cli

DEFAULT_BUILD_DIR = Path("build/pmod")
DEFAULT_SIM_DIR = Path("build/pmod-sim")
DEFAULT_SIM_PORT = 4321


def _lanes(text: str | None):
    if text is None:
        return None
    try:
        parts = [int(v) for v in text.split(",")]
    except ValueError:
        raise NnhdlError(f"--lanes {text!r}: give an integer or a comma-separated list of integers") from None
    if any(not 1 <= v <= 4096 for v in parts):
        raise NnhdlError(f"--lanes {text!r}: every lane count must be between 1 and 4096")
    return parts[0] if len(parts) == 1 else parts


def flash(board_name: str, bitstream: Path) -> None:
    """Program the board's SRAM with openFPGALoader; a clear error when it fails (e.g. no board)."""
    from soc.litex_soc import BOARDS
    from soc.toolchain import openfpgaloader_command

    cmd = openfpgaloader_command() + ["-b", BOARDS[board_name].openfpgaloader, str(bitstream)]
    print(f"flashing: {' '.join(cmd)}", file=sys.stderr)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise NnhdlError("openFPGALoader timed out after 300 s") from None
    if r.returncode != 0:
        lines = [l for l in (r.stderr + r.stdout).splitlines() if l.strip()]
        detail = "; ".join(lines[-3:]) if lines else f"exit status {r.returncode}"
        raise NnhdlError(f"programming the {board_name} failed: {detail}. Is the board connected by USB and "
                         f"powered (and do you have permission to open its USB device)?")


LATENCY_HELP = ("keep the whole network latency in one sample period: the answer to frame f goes out in "
                "frame f+2 (default: only the initiation interval must fit, the answer goes out in frame "
                "f+2+D, D printed by the build)")


def cmd_build(args: argparse.Namespace) -> int:
    from soc.build import BuildOptions, build, summary_table

    if args.flash_only:
        bit = Path(args.build_dir) / "gateware" / "nnhdl_pmod_soc.bit"
        if not bit.exists():
            raise NnhdlError(f"{bit}: no bitstream; run `python -m boards.pmod build` first")
        flash(args.board, bit)
        return 0
    report = build(BuildOptions(board=args.board, model_path=args.model, sample_rate=args.sample_rate,
                                sys_clock_mhz=args.sys_clock_mhz, build_dir=Path(args.build_dir),
                                lanes=_lanes(args.lanes), cal_path=args.cal, seed=args.seed,
                                clocking=args.clocking, latency_in_period=args.latency_in_period))
    print(summary_table(report))
    print(f"bitstream: {Path(args.build_dir) / report['bitstream']}")
    if args.flash:
        flash(args.board, Path(args.build_dir) / report["bitstream"])
        print("flashed")
    return 0


def _uart_timeout(build_dir: Path) -> float:
    """Seconds to wait for an answer: 2 for a board; a simulation (slower than real time) says
    how long in its report.json (``uart_timeout_s``)."""
    try:
        return float(json.loads((build_dir / "report.json").read_text()).get("uart_timeout_s", 2.0))
    except (OSError, ValueError, AttributeError):
        return 2.0


def _open_board(args: argparse.Namespace):
    from soc.host import Board, CSRMap, UARTBoneBus

    csrs = CSRMap.load(Path(args.build_dir) / "csr.csv")
    bus = UARTBoneBus(args.port, baudrate=args.baud, timeout=_uart_timeout(Path(args.build_dir)))
    return Board(bus, csrs), bus


def _built_manifest(report: Path) -> dict | None:
    """The hardware manifest the build recorded in report.json (None when there is no report)."""
    from nnhdl.inputs import read_json

    if not report.exists():
        return None
    obj = read_json(report, "build report")
    model = obj.get("model") if isinstance(obj, dict) else None
    if not isinstance(model, dict):
        raise NnhdlError(f"{report}: not a boards.pmod build report (no 'model' object); rebuild or pass --build-dir")
    built = model.get("hardware_manifest")
    if built is not None and not (isinstance(built, dict) and isinstance(built.get("layers", []), list)
                                  and all(isinstance(l, dict) for l in built.get("layers", []))):
        raise NnhdlError(f"{report}: model.hardware_manifest is malformed; rebuild or pass --build-dir")
    return built


def cmd_load_weights(args: argparse.Namespace) -> int:
    from nnhdl.model import Model
    from soc.host import load_weights

    model = Model.load(args.model)
    built = _built_manifest(Path(args.build_dir) / "report.json")
    board, comm = _open_board(args)
    try:
        res = load_weights(board, model, built_manifest=built, progress=lambda s: print(s, flush=True))
    finally:
        comm.close()
    print(f"loaded {res.weights} weights; bank {res.active_bank} active; model id {res.model_id:016x}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from soc.host import read_status
    from soc.registers import register

    board, comm = _open_board(args)
    try:
        st = read_status(board)
    finally:
        comm.close()
    for k, v in st.items():
        print(f"{k:<12} {v:x}" if register(k).hex else f"{k:<12} {v}")
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from boards.pmod_sim import run_sim

    return run_sim(args)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m boards.pmod", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the bitstream (and --flash it)")
    b.add_argument("--board", default="ecpix5", choices=["ecpix5", "colorlight_i5"])
    b.add_argument("--model", help="model file (.npz); default: the bundled fpga_qb model")
    b.add_argument("--sample-rate", type=int, choices=[192000, 48000], default=None,
                   help="default: the model's rate if supported, else 192000")
    b.add_argument("--sys-clock-mhz", type=finite_float(10.0, 400.0), default=None, help="network/system clock (default per board)")
    b.add_argument("--clocking", default="auto", choices=["auto", "mclk", "cdc"],
                   help="mclk: network on MCLK (256 cycles/sample); cdc: faster system clock + clock crossing; "
                        "auto (default): mclk when the network fits and no --sys-clock-mhz is given")
    b.add_argument("--lanes", default=None, help="multipliers per layer: N or N1,N2,... (default: the planner's, see `nnhdl plan`)")
    b.add_argument("--cal", default=None, help="calibration constants (JSON, see soc/cal_default.json)")
    b.add_argument("--latency-in-period", action="store_true", help=LATENCY_HELP)
    b.add_argument("--seed", type=nonneg_int, default=1, help="nextpnr placement seed")
    b.add_argument("--build-dir", type=output_dir, default=str(DEFAULT_BUILD_DIR))
    once = b.add_mutually_exclusive_group()
    once.add_argument("--flash", action="store_true", help="program the board with openFPGALoader after building")
    once.add_argument("--flash-only", action="store_true", help="program the existing bitstream, do not build")
    b.set_defaults(func=cmd_build)
    for name, func, helptext in (("load-weights", cmd_load_weights, "load new weights over UARTBone"),
                                 ("status", cmd_status, "print the status counters")):
        s = sub.add_parser(name, help=helptext)
        if name == "load-weights":
            s.add_argument("--model", required=True, help="model file with the same layer shapes as the build")
        s.add_argument("--port", required=True, help="serial port of the board's UART, e.g. /dev/ttyUSB1")
        s.add_argument("--baud", type=int_range(300, 12_000_000), default=115200)
        s.add_argument("--build-dir", default=str(DEFAULT_BUILD_DIR), help="where csr.csv and report.json are")
        s.set_defaults(func=func)
    from boards.pmod_sim import add_sim_parser

    add_sim_parser(sub, default_dir=DEFAULT_SIM_DIR, default_port=DEFAULT_SIM_PORT, func=cmd_sim)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli("boards.pmod", lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
