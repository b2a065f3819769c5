"""Build the default eurorack-pmod SoC and print its figures.

    python benchmarks/soc.py [--board ecpix5] [--model M.npz] [--sample-rate 192000] [--build-dir DIR]

Prints build wall time, MULT18X18D / DP16KD / LUT / FF, Fmax per clock and
the network's cycles per sample against the budget (f_sys / fs).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nnhdl.synth import PNR_CELLS  # noqa: E402
from soc.build import BuildOptions, build  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--board", default="ecpix5")
    p.add_argument("--model", default=None)
    p.add_argument("--sample-rate", type=int, default=192000)
    p.add_argument("--sys-clock-mhz", type=float, default=None)
    p.add_argument("--build-dir", default="build/bench_soc")
    a = p.parse_args()
    t0 = time.monotonic()
    r = build(BuildOptions(board=a.board, model_path=a.model, sample_rate=a.sample_rate,
                           sys_clock_mhz=a.sys_clock_mhz, build_dir=Path(a.build_dir)))
    wall = time.monotonic() - t0
    u = r["utilisation"]
    print(f"board {r['board']}, model {r['model']['source']}, {r['sample_rate']} Hz")
    print(f"build wall time        {wall:.0f} s")
    labels = {"lut": "LUT4 (TRELLIS_COMB)", "ff": "FF (TRELLIS_FF)"}
    for figure, bel in PNR_CELLS.items():
        label = labels.get(figure, bel)
        if bel in u:
            print(f"{label:<22} {u[bel]['used']}/{u[bel]['available']} ({100 * u[bel]['used'] / u[bel]['available']:.1f}%)")
    for clk, f in r["fmax"].items():
        print(f"Fmax {clk:<17} {f['fmax_mhz']:.1f} MHz (target {f['target_mhz']:.1f} MHz)")
    print(f"cycles per sample      {r['cycles_per_sample']} of {r['cycle_budget']} "
          f"({100 * r['cycles_per_sample'] / r['cycle_budget']:.0f}% of the budget)")
    print(f"latency                {r['latency_cycles']} cycles: frame f out in frame f+{r['latency_frames']} "
          f"(D = {r['delay_frames']})")
    for stage, secs in r["stage_seconds"].items():
        print(f"  {stage:<36} {secs:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
