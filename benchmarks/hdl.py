"""HDL figures: simulation speed per backend, cycles/multipliers/LUTs per lanes setting.

    PYTHONPATH=. python benchmarks/hdl.py                 # schedule table + pysim + verilator speed
    PYTHONPATH=. python benchmarks/hdl.py --synth         # also real yosys counts for fpga_qb
    PYTHONPATH=. python benchmarks/hdl.py --skip-sim      # schedule table only

Numbers are measured on the machine it runs on; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nnhdl.configs import REFERENCE, random_model  # noqa: E402
from nnhdl.hdl.schedule import schedule  # noqa: E402
from nnhdl.reference import evaluate  # noqa: E402


def table() -> None:
    print("== cycles per sample, multipliers, estimated LUT/FF/DP16KD (ECP5) per lanes setting")
    print(f"{'network':<9} {'lanes':<11} {'cycles':>6} {'MULT18':>6} {'~LUT':>6} {'~FF':>6} {'DP16KD':>6}  "
          f"{'max kHz @100MHz':>15}")
    for name in REFERENCE:
        model = random_model(name, seed=0)
        for lanes in (1, 4, None, 16):
            s = schedule(model, lanes)
            label = "in_dim" if lanes is None else str(lanes)
            print(f"{name:<9} {label:<11} {s.cycles_per_sample:>6} {s.total('mult18'):>6} {s.total('lut'):>6} "
                  f"{s.total('ff'):>6} {s.total('dp16kd'):>6}  {s.max_rate(100e6) / 1e3:>15,.1f}")


def sim_speed(n_pysim: int, n_verilator: int) -> None:
    from nnhdl.hdl.network import Network
    from nnhdl.sim.pysim import stream_through

    model = random_model("fpga_qb", seed=0)
    rng = np.random.default_rng(0)
    x = rng.integers(-8000, 8000, (max(n_pysim, n_verilator), 4))
    print("== simulation speed, fpga_qb, default lanes (in_dim per layer)")
    net = Network(model)
    t = time.perf_counter()
    res = stream_through(net, x[:n_pysim])
    dt = time.perf_counter() - t
    ok = np.array_equal(res.output, evaluate(model, x[:n_pysim]))
    print(f"pysim      {n_pysim:>7,} samples  {dt:7.1f} s  {n_pysim / dt:>9,.1f} samples/s  "
          f"{res.cycles / dt:>11,.0f} cycles/s  (incl. elaboration) bit-exact={ok}")
    import shutil

    if shutil.which("verilator") is None:
        print("verilator  not installed")
        return
    from nnhdl.sim.verilator import VerilatorSim

    t = time.perf_counter()
    sim = VerilatorSim(model)
    build = time.perf_counter() - t
    t = time.perf_counter()
    y = sim.run(x[:n_verilator])
    dt = time.perf_counter() - t
    ok = np.array_equal(y, evaluate(model, x[:n_verilator]))
    cycles = sim.figures["cycles"]
    print(f"verilator  {n_verilator:>7,} samples  {dt:7.1f} s  {n_verilator / dt:>9,.0f} samples/s  "
          f"{cycles / dt:>11,.0f} cycles/s  (build/cache lookup {build:.1f} s) bit-exact={ok}")


def synth() -> None:
    from nnhdl.synth import synthesise

    print("== yosys synth_ecp5, fpga_qb (estimate vs real)")
    model = random_model("fpga_qb", seed=0)
    for lanes in (4, None):
        s = schedule(model, lanes)
        res = synthesise(model, lanes, Path("build") / f"bench-synth-{lanes}")
        c = res.cells
        print(f"lanes {lanes or 'in_dim'}: MULT18X18D {c.get('MULT18X18D', 0)} (est {s.total('mult18')}), "
              f"LUT4 {c.get('LUT4', 0)} (est {s.total('lut')}), TRELLIS_FF {c.get('TRELLIS_FF', 0)} "
              f"(est {s.total('ff')}), DP16KD {c.get('DP16KD', 0)} (est {s.total('dp16kd')}), {res.seconds:.0f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--skip-sim", action="store_true")
    p.add_argument("--synth", action="store_true")
    p.add_argument("--pysim-samples", type=int, default=100)
    p.add_argument("--verilator-samples", type=int, default=192_000)
    a = p.parse_args()
    table()
    if not a.skip_sim:
        sim_speed(a.pysim_samples, a.verilator_samples)
    if a.synth:
        synth()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
