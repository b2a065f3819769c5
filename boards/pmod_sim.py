"""``python -m boards.pmod sim``: the eurorack-pmod SoC in Verilator, talking like the board.

The simulation writes ``csr.csv`` and ``report.json`` into its ``--build-dir``
(default ``build/pmod-sim``), so the board tools work against it unchanged:

    python -m boards.pmod sim --sample-rate 48000 &
    python -m boards.pmod status --port socket://localhost:4321 --build-dir build/pmod-sim
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path

import numpy as np

from nnhdl.errors import NnhdlError
from nnhdl.model import write_atomically

EPILOG = """\
With --input, DAC frame k of --output (4 channels: the output jacks) is the network's answer to input
frame k - 2 - D (D as the build prints it and report.json's latency_frames = 2 + D records; D = 0
when the network's whole latency fits one sample period); with the default calibration and every
jack plugged, output jack 0 equals column 0 of `python -m nnhdl run --target reference` on the same
WAV, delayed by 2 + D samples.
WAV channel c plays input jack c (at most 4 channels; missing ones are silent).  Without --input the
bundled test signal loops until Ctrl-C (or --seconds).  The UART (UARTBone, 115200 baud in the
gateware) is at socket://localhost:PORT while it runs.
"""


def add_sim_parser(sub, *, default_dir: Path, default_port: int, func) -> None:
    s = sub.add_parser("sim", help="simulate the whole SoC in Verilator (codec, I2C and UART models)",
                       description="The eurorack-pmod SoC in Verilator, talking like the board.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--model", help="model file (.npz); default: the bundled fpga_qb model")
    s.add_argument("--sample-rate", type=int, choices=[192000, 48000], default=None,
                   help="default: the model's rate if supported, else 192000 (a simulated second at 48000 is 4x quicker)")
    s.add_argument("--input", help="WAV played into input jacks 0..3 (pmod counts); default: the test signal")
    s.add_argument("--output", help="WAV recording of the 4 output jacks")
    s.add_argument("--seconds", type=float, default=None,
                   help="simulated seconds to run (default: the input's length + latency; forever without --input)")
    s.add_argument("--uart-port", type=int, default=default_port,
                   help=f"TCP port of the UART, on localhost (default {default_port}; 0: any free port)")
    s.add_argument("--jack", type=lambda v: int(v, 0), default=0xFF,
                   help="PCA9557 jack-detect byte, bit c = input jack c plugged (default 0xff: all plugged)")
    s.add_argument("--i2c-log", help="copy the I2C register log (one 'write ADDR REG VALUE' a line) here")
    s.add_argument("--board", default="ecpix5", choices=["ecpix5", "colorlight_i5"])
    s.add_argument("--clocking", default="auto", choices=["auto", "mclk", "cdc"], help="as for build")
    s.add_argument("--sys-clock-mhz", type=float, default=None, help="as for build (cdc clocking)")
    s.add_argument("--lanes", default=None, help="multipliers per layer, as for build (default: the planner's)")
    s.add_argument("--latency-in-period", action="store_true", help="as for build")
    s.add_argument("--cal", default=None, help="calibration constants (JSON), as for build")
    s.add_argument("--build-dir", default=str(default_dir), help="where csr.csv and report.json are written")
    s.set_defaults(func=func)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_sim(args: argparse.Namespace) -> int:
    from nnhdl.audio_io import read_wav_counts
    from boards.pmod import _lanes
    from soc.board_sim import BoardSim, build_sim, codec_adc, demo_signal, write_board_files
    from soc.build import BuildOptions

    for path in (args.output, args.i2c_log):
        if path and not Path(path).parent.is_dir():
            raise NnhdlError(f"{path}: folder {Path(path).parent} does not exist")
    if args.output and Path(args.output).suffix.lower() != ".wav":
        raise NnhdlError(f"{args.output}: --output must be a .wav file")
    if args.seconds is not None and not args.seconds > 0:
        raise NnhdlError(f"--seconds {args.seconds}: give a positive number of simulated seconds")
    if not 0 <= args.uart_port <= 65535:
        raise NnhdlError(f"--uart-port {args.uart_port}: not a TCP port (0..65535)")
    if not 0 <= args.jack <= 0xFF:
        raise NnhdlError(f"--jack {args.jack:#x}: the PCA9557 input byte is 0x00..0xff")
    counts = None
    if args.input:
        if not Path(args.input).is_file():
            raise NnhdlError(f"{args.input}: no such input file")
        wav_rate, counts = read_wav_counts(args.input)
        if counts.shape[1] > 4:
            raise NnhdlError(f"{args.input}: has {counts.shape[1]} channels; the pmod has 4 input jacks")
    build_dir = Path(args.build_dir)
    sim = build_sim(BuildOptions(board=args.board, model_path=args.model, sample_rate=args.sample_rate,
                                 sys_clock_mhz=args.sys_clock_mhz, cal_path=args.cal, clocking=args.clocking,
                                 lanes=_lanes(args.lanes), latency_in_period=args.latency_in_period),
                    log=_say)
    rate = sim.sample_rate
    if counts is not None and wav_rate != rate:
        _say(f"note: {args.input} is {wav_rate} Hz, the simulated codec runs at {rate} Hz")
    write_board_files(sim, build_dir, args.board)

    if counts is not None:
        adc, loop = codec_adc(counts), False
        frames = len(adc) + sim.latency_frames
    else:
        adc, loop, frames = codec_adc(demo_signal(rate)), True, None
    if args.seconds is not None:
        frames = max(1, int(round(args.seconds * rate)))

    last = [0.0]

    def progress(n: int, cycles: int, wall: float) -> None:
        if wall - last[0] < 5:
            return
        last[0] = wall
        total = f"/{frames}" if frames else ""
        _say(f"  {n}{total} samples ({n / rate:.2f} s simulated) in {wall:.0f} s, {n / max(wall, 1e-9):.0f} samples/s")

    def stop_on_term(signum, frame) -> None:  # `kill PID` stops the run like Ctrl-C (and writes --output)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_term)
    with tempfile.TemporaryDirectory(prefix="nnhdl-sim-") as tmp:
        run = BoardSim(sim, Path(tmp), adc=adc, frames=frames, loop=loop, port=args.uart_port, jack=args.jack,
                       progress=progress)
        run.start()
        try:
            _say(f"simulating {sim.model_desc} at {rate} Hz ({sim.clocking} clocking, input frame f answered "
                 f"in frame f+{sim.latency_frames}); UART at "
                 f"socket://localhost:{run.port}; "
                 f"status: python -m boards.pmod status --port socket://localhost:{run.port} --build-dir {build_dir}")
            if frames is None:
                _say("running until Ctrl-C")
            stats = run.wait()
        except KeyboardInterrupt:
            run.stop()
            stats = run.stats
            _say("stopped")
        dac = run.dac()
        if args.output:
            from scipy.io import wavfile

            write_atomically(args.output, lambda f: wavfile.write(f, rate, dac.astype(np.int16)))
        if args.i2c_log:
            text = (Path(tmp) / "i2c.log").read_text() if (Path(tmp) / "i2c.log").exists() else ""
            write_atomically(args.i2c_log, lambda f: f.write(text), mode="w")
    wall = stats.get("seconds", 0.0)
    print(f"simulated {len(dac)} samples ({len(dac) / rate:.3f} s at {rate} Hz) in {wall:.1f} s"
          + (f"; wrote {args.output}" if args.output else ""))
    return 0
