"""Training speed: steps per second and wall time until fpga_qb reaches its quality goal.

    PYTHONPATH=. python benchmarks/train.py [--config fpga_qb] [--max-steps N] [--eval-every N]

Trains with the same settings as the bundled model (see nnhdl/models/*.md),
exports the integer model every --eval-every steps and scores it with the
golden model on the held-out set; stops at the goal (mean corner NMSE <= 0.02,
worst <= 0.05).  Training time excludes the scoring.  Prints one line per
check and a summary.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.evaluate import GOAL_MEAN, GOAL_WORST, score  # noqa: E402
from training.train import TrainConfig, Trainer  # noqa: E402
from training.defaults import DEFAULTS  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="fpga_qb", choices=sorted(DEFAULTS))
    p.add_argument("--max-steps", type=int, default=None, help="give up after this many steps (default: the bundled run's)")
    p.add_argument("--eval-every", type=int, default=2500)
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args()
    d = dict(DEFAULTS[args.config])
    if args.seed is not None:
        d["seed"] = args.seed
    steps = args.max_steps or d["steps"]
    tr = Trainer(TrainConfig(args.config, steps=d["steps"], batch=d["batch"], lr=d["lr"], seed=d["seed"]))
    print(f"{args.config}: batch {d['batch']}, window {tr.window}, lr {d['lr']}, schedule over {d['steps']} steps")
    t_start = time.perf_counter()
    t_train = 0.0
    t_first = None
    while tr.step < steps:
        t0 = time.perf_counter()
        n = min(args.eval_every, steps - tr.step)
        for _ in range(n):
            tr.train_step()
        t_train += time.perf_counter() - t0
        if t_first is None:
            t_first = t_train  # includes the one-off jit compile
        s = score(tr.export(), float_model=False)
        print(f"step {tr.step:6d}  train {t_train:6.1f} s  {tr.step / t_train:6.1f} steps/s  "
              f"corner NMSE mean {s.mean:.4f} worst {s.worst:.4f}", flush=True)
        if s.mean <= GOAL_MEAN and s.worst <= GOAL_WORST:
            print(f"GOAL reached at step {tr.step}: {t_train:.1f} s of training ({tr.step / t_train:.1f} steps/s), "
                  f"{time.perf_counter() - t_start:.1f} s wall time including the periodic scoring")
            return 0
    print(f"goal NOT reached in {steps} steps ({t_train:.1f} s)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
