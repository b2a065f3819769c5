"""Whole-SoC simulation figures (``boards.pmod sim``): speed, and UART upload time.

    PYTHONPATH=. python benchmarks/board_sim.py [--model M.npz] [--sample-rate 48000] [--samples 20000]
    PYTHONPATH=. python benchmarks/board_sim.py --measure-upload   # also run load-weights in the sim

Prints simulated samples per second of the whole SoC (UARTBone, CSRs, network,
calibration, TDM serdes, I2C, with the codec/I2C/UART models on its pins), the
same for the network alone in Verilator (nnhdl.sim.verilator) and their ratio,
and the UART upload time of the model's weights at 115200 baud from the bit
count of the host's UARTBone frames.  Measured on the machine it runs on;
nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from soc.board_sim import (UART_BAUD, BoardSim, build_sim, codec_adc, demo_signal,  # noqa: E402
                           uart_upload_bits, write_board_files)
from soc.build import BuildOptions, default_model  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model file (default: the bundled fpga_qb)")
    p.add_argument("--sample-rate", type=int, default=48000, choices=[48000, 192000])
    p.add_argument("--samples", type=int, default=20000, help="samples to simulate for the speed figure")
    p.add_argument("--measure-upload", action="store_true",
                   help="also run `boards.pmod load-weights` against the sim and count the bytes (slow)")
    a = p.parse_args()
    from nnhdl.model import Model

    model, desc = (Model.load(a.model), a.model) if a.model else default_model()
    t = time.perf_counter()
    sim = build_sim(BuildOptions(model=model, model_path=desc, sample_rate=a.sample_rate), log=lambda s: None)
    build_s = time.perf_counter() - t
    n = a.samples
    with tempfile.TemporaryDirectory(prefix="nnhdl-bench-") as d:
        run = BoardSim(sim, Path(d), adc=codec_adc(demo_signal(a.sample_rate, n / a.sample_rate)), frames=n,
                       port=None)
        run.start()
        st = run.wait()
    soc_rate = st["frames"] / st["seconds"]
    print(f"model {sim.model_desc}, {model.params} params, {a.sample_rate} Hz, clocking {sim.clocking}, "
          f"sys clock {sim.sys_hz / 1e6:g} MHz")
    print(f"whole SoC (Verilator)   {st['frames']:>7,} samples  {st['seconds']:6.1f} s  {soc_rate:>9,.0f} samples/s"
          f"  {st['cycles'] / st['seconds']:>11,.0f} cycles/s  ({soc_rate / a.sample_rate:.4f}x real time; "
          f"build/cache lookup {build_s:.0f} s)")

    from nnhdl.sim.verilator import VerilatorSim

    net = VerilatorSim(model)
    x = np.random.default_rng(0).integers(-8000, 8000, (max(n, 20000), model.input_dim))
    t = time.perf_counter()
    net.run(x)
    dt = time.perf_counter() - t
    net_rate = len(x) / dt
    print(f"network only (Verilator) {len(x):>7,} samples  {dt:6.1f} s  {net_rate:>9,.0f} samples/s")
    print(f"ratio whole SoC / network only: {soc_rate / net_rate:.3f} (samples/s; the network-only harness "
          f"also runs one clock per cycle)")

    bits = uart_upload_bits(model.params)
    print(f"UART upload of {model.params} weights at {UART_BAUD} baud: {bits:,} bits on the wire = "
          f"{bits / UART_BAUD:.2f} s on the board; simulating it takes ~{bits / UART_BAUD * a.sample_rate / soc_rate:.0f} s "
          f"here")
    if a.measure_upload:
        from boards.pmod import main as pmod_main

        with tempfile.TemporaryDirectory(prefix="nnhdl-bench-") as d:
            write_board_files(sim, Path(d) / "b")
            from nnhdl.configs import random_model

            new = random_model(model_spec(model), seed=99)
            new.save(Path(d) / "new.npz")
            with BoardSim(sim, Path(d) / "run", adc=codec_adc(demo_signal(a.sample_rate)), loop=True,
                          port=0) as run:
                f0, t = run.frames, time.perf_counter()
                rc = pmod_main(["load-weights", "--model", str(Path(d) / "new.npz"), "--port",
                                f"socket://localhost:{run.port}", "--build-dir", str(Path(d) / "b")])
                wall = time.perf_counter() - t
            sent = run.uart_log()[0]
            n_read_words = _read_words(sent)
            wire = 10 * (len(sent) + 4 * n_read_words)
            print(f"measured upload: exit {rc}, {len(sent):,} bytes to the board + {4 * n_read_words:,} back = "
                  f"{wire:,} bits ({wire / UART_BAUD:.2f} s at {UART_BAUD} baud; formula {bits:,}); "
                  f"{wall:.0f} s of wall time in the simulation")
    return 0


def model_spec(model):
    """The model's layer shapes as a NetworkSpec (for a second model that fits the same build)."""
    from nnhdl.configs import LayerSpec, NetworkSpec

    return NetworkSpec("same-shape", model.input_dim, tuple(
        LayerSpec(l.kernel_size, l.dilation, l.out_dim, l.kind, l.activation, l.relu_max) for l in model.layers))


def _read_words(data: bytes) -> int:
    """Words the board answers to the read commands in ``data`` (UARTBone framing)."""
    words, i = 0, 0
    while i + 6 <= len(data):
        cmd, n = data[i], data[i + 1]
        words += n if cmd in (2, 4) else 0
        i += 6 + (4 * n if cmd in (1, 3) else 0)
    return words


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
