"""Training speed: steps per second and time until fpga_qb reaches each quality goal.

    PYTHONPATH=. python benchmarks/train.py [--config fpga_qb] [--max-steps N] [--eval-every N]

First a *plain float* run of the same network, batch and window (no
quantisers, ``--float-steps`` steps) measures the machine's speed; then the
quantisation-aware run with the bundled model's settings
(``training/defaults.py``, including its ``init`` model) exports the integer model every --eval-every
steps and scores it with the golden model on the held-out set (corners and
edges), until every goal is met or --max-steps.  The float baseline is
measured again at the end, and every time is also given as a ratio to it, so
figures from a loaded machine still compare: ``QAT time / float step time``
is how many plain float steps the same wall time would buy.  Training time
excludes the scoring.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.defaults import DEFAULTS  # noqa: E402
from training.evaluate import CORNER_GOAL, EDGE_GOAL, GOAL_MEAN, GOAL_WORST, score  # noqa: E402
from training.train import TrainConfig, Trainer  # noqa: E402

#: name -> (kind of points, (mean, worst)) of every goal the benchmark times.
GOALS = {
    "original fpga_qb bar (corners 0.02/0.05)": ("corner", (GOAL_MEAN, GOAL_WORST)),
    f"corner goal ({CORNER_GOAL[0]}/{CORNER_GOAL[1]})": ("corner", CORNER_GOAL),
    f"edge goal ({EDGE_GOAL[0]}/{EDGE_GOAL[1]})": ("edge", EDGE_GOAL),
}


def float_steps_per_second(config: str, d: dict, steps: int) -> float:
    """Steps/s of a plain float training run (the quantisers never switch on); compile excluded."""
    tr = Trainer(TrainConfig(config, steps=d["steps"], batch=d["batch"], lr=d["lr"], seed=d["seed"],
                             qat_from=d["steps"], init=d.get("init")))
    tr.train_step()  # jit compile
    t0 = time.perf_counter()
    for _ in range(steps):
        tr.train_step()
    return steps / (time.perf_counter() - t0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="fpga_qb", choices=sorted(DEFAULTS))
    p.add_argument("--max-steps", type=int, default=None, help="give up after this many steps (default: the bundled run's)")
    p.add_argument("--eval-every", type=int, default=2500)
    p.add_argument("--float-steps", type=int, default=1000, help="steps of each plain float baseline (default 1000)")
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args()
    d = dict(DEFAULTS[args.config])
    if args.seed is not None:
        d["seed"] = args.seed
    steps = args.max_steps or d["steps"]
    base0 = float_steps_per_second(args.config, d, args.float_steps)
    print(f"plain float baseline: {base0:.1f} steps/s ({args.float_steps} steps)", flush=True)
    tr = Trainer(TrainConfig(args.config, steps=d["steps"], batch=d["batch"], lr=d["lr"], seed=d["seed"],
                             init=d.get("init")))
    print(f"{args.config}: batch {d['batch']}, window {tr.window}, lr {d['lr']}, schedule over {d['steps']} steps, "
          f"starting from {d.get('init') or 'random weights'}")
    tr.train_step()  # jit compile, not timed
    t_train = 0.0
    reached: dict[str, tuple[int, float]] = {}
    while tr.step < steps and len(reached) < len(GOALS):
        t0 = time.perf_counter()
        for _ in range(min(args.eval_every, steps - tr.step)):
            tr.train_step()
        t_train += time.perf_counter() - t0
        s = score(tr.export(), float_model=False, interior=())
        (cm, cw), (em, ew) = s.summary("corner"), s.summary("edge")
        print(f"step {tr.step:6d}  train {t_train:7.1f} s  {(tr.step - 1) / t_train:6.1f} steps/s  "
              f"corner NMSE mean {cm:.4f} worst {cw:.4f}  edge mean {em:.4f} worst {ew:.4f}", flush=True)
        for name, (kind, (gm, gw)) in GOALS.items():
            m, w = s.summary(kind)
            if name not in reached and m <= gm and w <= gw:
                reached[name] = (tr.step, t_train)
    qat = (tr.step - 1) / t_train
    base1 = float_steps_per_second(args.config, d, args.float_steps)
    base = (base0 + base1) / 2
    print(f"plain float baseline again: {base1:.1f} steps/s; mean {base:.1f} steps/s")
    print(f"quantisation-aware: {qat:.1f} steps/s = {qat / base:.2f} x the plain float run")
    for name in GOALS:
        if name in reached:
            n, t = reached[name]
            print(f"{name}: reached at step {n} after {t:.1f} s of training = "
                  f"{t * base:.0f} plain float steps' time")
        else:
            print(f"{name}: NOT reached in {tr.step} steps ({t_train:.1f} s)")
    return 0 if len(reached) == len(GOALS) else 1


if __name__ == "__main__":
    sys.exit(main())
