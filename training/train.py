"""``python -m training.train``: quantisation-aware training of an nnhdl model.

The loss is computed on the *quantised* forward pass (weights through the
qb/po2 quantisers, every layer output requantised and saturated exactly like
the golden model), so the exported integers are what was optimised.  Batches
depend only on (seed, step), so a run interrupted and resumed from its
checkpoint continues exactly where it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnhdl.argtypes import ArgumentParser, int_range, nonneg_int, positive_float, positive_int, seed
from nnhdl.configs import load_spec
from nnhdl.errors import NnhdlError, run_cli
from nnhdl.inputs import parse_json
from nnhdl.limits import MAX_SAMPLE_RATE
from nnhdl.outputs import check_output_path, writable, write_atomically

from .data import Dataset, load_data
from .model import Net, Params, export_model, forward, init_params

__all__ = ["TrainConfig", "Trainer", "train", "main"]

#: Samples in one training batch (batch x window): what fits in memory with the gradients.
MAX_BATCH_SAMPLES = 1 << 22


class TrainConfig:
    """Everything that determines a run (recorded in the checkpoint and the model's meta)."""

    def __init__(self, config: str = "fpga_qb", steps: int = 3000, batch: int = 32, window: int | None = None,
                 lr: float = 3e-3, seed: int = 0, data: str = "synthetic", sample_rate: int | None = None,
                 qat_from: int = 0, clip: float = 1.0, init: str | None = None) -> None:
        self.config, self.steps, self.batch, self.window = config, steps, batch, window
        self.lr, self.seed, self.data, self.sample_rate = lr, seed, data, sample_rate
        self.qat_from, self.clip, self.init = qat_from, clip, init
        for name in ("steps", "batch"):
            if getattr(self, name) < 1:
                raise NnhdlError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if not lr > 0:
            raise NnhdlError(f"--lr must be positive, got {lr}")

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _loss_fn(params: Params, x: jax.Array, y: jax.Array, net: Net, quantised: bool) -> jax.Array:
    """MSE on output channel 0 once the receptive field has filled."""
    out = forward(params, x, net, quantised)[:, net.receptive_field - 1:, 0]
    return jnp.mean((out - y[:, net.receptive_field - 1:]) ** 2)


class Trainer:
    """Holds the network, optimiser state and data stream of one run."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.spec = spec = load_spec(cfg.config)
        self.net = Net.from_spec(spec, cfg.sample_rate)
        self.data: Dataset = load_data(cfg.data, self.net.input_dim, self.net.sample_rate, self.net.fmt)
        rf = self.net.receptive_field
        self.window = cfg.window or (rf - 1 + 256)
        if self.window < rf:
            raise NnhdlError(f"--window {self.window} is shorter than the receptive field ({rf} samples)")
        if cfg.batch * self.window > MAX_BATCH_SAMPLES:
            raise NnhdlError(f"--batch {cfg.batch} x --window {self.window} is above the limit of "
                             f"{MAX_BATCH_SAMPLES:,} samples per step")
        warmup = max(1, min(200, cfg.steps // 10))
        self.schedule = optax.warmup_cosine_decay_schedule(0.0, cfg.lr, warmup, max(cfg.steps, warmup + 1), cfg.lr * 0.03)
        self.opt = optax.chain(optax.clip_by_global_norm(cfg.clip), optax.adam(self.schedule))
        self.params = init_params(self.net, jax.random.PRNGKey(cfg.seed), jnp.float32)
        if cfg.init:
            self.params = _params_from_file(cfg.init, self.net)
        self.opt_state = self.opt.init(self.params)
        self.step = 0
        self.history: list[tuple[int, float]] = []
        self.scores: list[tuple[int, float, float]] = []  # (step, corner mean, edge mean), held-out
        net, opt = self.net, self.opt

        def make_step(quantised: bool):
            def step(params, opt_state, x, y):
                loss, grads = jax.value_and_grad(_loss_fn)(params, x, y, net, quantised)
                updates, opt_state = opt.update(grads, opt_state, params)
                return optax.apply_updates(params, updates), opt_state, loss
            return jax.jit(step)

        self._steps = {True: make_step(True), False: make_step(False)}
        self._loss = jax.jit(_loss_fn, static_argnums=(3, 4))

    def batch_at(self, step: int, stream: int = 0) -> tuple[jax.Array, jax.Array]:
        """The batch of a given step: depends only on (seed, stream, step)."""
        rng = np.random.default_rng(np.random.SeedSequence(self.cfg.seed, spawn_key=(stream, step)))
        x, y = self.data.batch(rng, self.cfg.batch, self.window)
        return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)

    def train_step(self) -> float:
        x, y = self.batch_at(self.step)
        quantised = self.step >= self.cfg.qat_from
        self.params, self.opt_state, loss = self._steps[quantised](self.params, self.opt_state, x, y)
        self.step += 1
        return float(loss)

    def validation_losses(self, batches: int = 4) -> dict[str, float]:
        """Quantised and float losses on a fixed validation stream (not the test set)."""
        q, f = [], []
        for n in range(batches):
            x, y = self.batch_at(n, stream=1)
            q.append(float(self._loss(self.params, x, y, self.net, True)))
            f.append(float(self._loss(self.params, x, y, self.net, False)))
        return {"quantised": float(np.mean(q)), "float": float(np.mean(f))}

    # -- checkpoints -----------------------------------------------------

    def save_checkpoint(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise NnhdlError(f"{path}: cannot create the checkpoint folder ({e.strerror or e})") from None
        leaves = jax.tree_util.tree_leaves((self.params, self.opt_state))
        arrays = {f"leaf{n}": np.asarray(v) for n, v in enumerate(leaves)}
        arrays["state"] = np.array(json.dumps({"step": self.step, "config": self.cfg.as_dict(),
                                               "history": self.history, "scores": self.scores,
                                               "window": self.window}))
        # durable: a checkpoint is what Ctrl-C and a later failure must leave behind
        write_atomically(path, lambda f: np.savez(f, **arrays), durable=True)

    def load_checkpoint(self, path: Path) -> None:
        try:
            with np.load(path, allow_pickle=False) as z:
                state = parse_json(str(z["state"]), f"{path}: state")
                leaves = [z[f"leaf{n}"] for n in range(len(z.files) - 1)]
        except NnhdlError as e:
            raise NnhdlError(f"{e}; delete the checkpoint to start afresh") from None
        except Exception as e:
            raise NnhdlError(f"{path}: cannot read the checkpoint ({type(e).__name__}: {e}); delete it to start afresh") from None
        if not (isinstance(state, dict) and isinstance(state.get("config"), dict)
                and isinstance(state.get("step"), int) and isinstance(state.get("history"), list)):
            raise NnhdlError(f"{path}: not a training checkpoint (needs step, config and history); "
                             "delete it to start afresh")
        mine = self.cfg.as_dict()
        theirs = state["config"]
        differ = [k for k in mine if k != "steps" and mine[k] != theirs.get(k)]
        if differ:
            raise NnhdlError(f"{path}: checkpoint was made with different settings ({', '.join(differ)}); "
                             "use the same options or delete the checkpoint")
        treedef = jax.tree_util.tree_structure((self.params, self.opt_state))
        template = jax.tree_util.tree_leaves((self.params, self.opt_state))
        if len(leaves) != len(template) or any(a.shape != np.shape(b) for a, b in zip(leaves, template)):
            raise NnhdlError(f"{path}: checkpoint does not match this network; delete it to start afresh")
        self.params, self.opt_state = jax.tree_util.tree_unflatten(
            treedef, [jnp.asarray(a, dtype=jnp.asarray(b).dtype) for a, b in zip(leaves, template)])
        self.step = int(state["step"])
        self.history = [tuple(h) for h in state["history"]]
        scores = state.get("scores", [])
        if not (isinstance(scores, list) and all(isinstance(h, list) and len(h) == 3 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in h) for h in scores)):
            raise NnhdlError(f"{path}: checkpoint scores are malformed; delete the checkpoint to start afresh")
        self.scores = [tuple(h) for h in scores]

    def held_out_scores(self) -> tuple[float, float]:
        """(corner mean, edge mean) NMSE of the exported integers on a small held-out set (golden model).

        Smaller than ``training.evaluate``'s set (3 windows of 2048 samples per
        point, no interior) so that it can run during training; the same
        seed, so the two agree closely.
        """
        from .evaluate import score

        s = score(self.export(), per_point=3, length=2048, float_model=False, interior=())
        return s.summary("corner")[0], s.summary("edge")[0]

    def export(self, extra_meta: dict[str, Any] | None = None):
        losses = self.validation_losses()
        meta = {
            "name": self.spec.name,
            "trained_by": "training.train (quantisation-aware, JAX/optax)",
            "config": self.spec.to_json() | {"sample_rate": self.net.sample_rate},
            "data": self.data.describe(),
            "steps": self.step,
            "seed": self.cfg.seed,
            "batch": self.cfg.batch,
            "window": self.window,
            "lr": self.cfg.lr,
            "qat_from": self.cfg.qat_from,
            "init": self.cfg.init,
            "final_loss": losses,
            "loss_history": [[int(s), round(float(l), 7)] for s, l in _thin(self.history, 200)],
            "score_history": [[int(s), round(c, 5), round(e, 5)] for s, c, e in self.scores],
            "notes": "loss = MSE (model units^2) on output 0 after the receptive field; "
                     "final_loss on a fixed validation stream",
        }
        meta.update(extra_meta or {})
        return export_model(self.params, self.net, meta)


def _params_from_file(path: str, net: Net) -> Params:
    """Start from a trained model's integers (fine-tuning), which must have this network's layers."""
    from nnhdl.model import Model

    from .model import params_from_model

    model = Model.load(path)
    if Net.from_model(model).layers != net.layers or model.input_dim != net.input_dim:
        raise NnhdlError(f"{path}: --init model has different layers than configuration {net.name!r}")
    return params_from_model(model, jnp.float32)


def _thin(history: list[tuple[int, float]], n: int) -> list[tuple[int, float]]:
    if len(history) <= n:
        return history
    idx = np.unique(np.linspace(0, len(history) - 1, n).round().astype(int))
    return [history[i] for i in idx]


def train(cfg: TrainConfig, out: Path, checkpoint: Path | None = None, resume: bool = False,
          progress: bool = True, checkpoint_every: int = 500, extra_meta: dict[str, Any] | None = None,
          score_every: int = 0):
    """Run (or resume) training and write the model file; returns the exported Model.

    Every ``score_every`` steps (0: never) the held-out corner and edge NMSE
    go on the progress line and into the model's meta; that scoring time is
    not counted in ``train_seconds``.
    """
    out = check_output_path(out, "model file")
    if score_every < 0:
        raise NnhdlError(f"--score-every must be 0 (never) or positive, got {score_every}")
    if checkpoint is not None:
        _check_checkpoint_path(checkpoint)
    trainer = Trainer(cfg)
    if checkpoint is not None and resume and checkpoint.exists():
        trainer.load_checkpoint(checkpoint)
        if progress:
            print(f"resumed from {checkpoint} at step {trainer.step}", file=sys.stderr)
    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=trainer.step, disable=not progress, desc=trainer.spec.name,
               mininterval=1.0, file=sys.stderr, unit="step")
    ema = None
    t0 = time.perf_counter()
    scoring = 0.0
    shown: dict[str, str] = {}  # latest held-out NMSE on the progress line
    try:
        while trainer.step < cfg.steps:
            loss = trainer.train_step()
            if not np.isfinite(loss):
                raise NnhdlError(f"loss became {loss} at step {trainer.step}; lower --lr")
            ema = loss if ema is None else 0.98 * ema + 0.02 * loss
            if trainer.step % 10 == 0:
                trainer.history.append((trainer.step, ema))
                bar.set_postfix(loss=f"{ema:.2e}", **shown, refresh=False)
            if score_every and (trainer.step % score_every == 0 or trainer.step == cfg.steps):
                ts = time.perf_counter()
                corner, edge = trainer.held_out_scores()
                trainer.scores.append((trainer.step, corner, edge))
                shown = {"corner": f"{corner:.4f}", "edge": f"{edge:.4f}"}
                bar.set_postfix(loss=f"{ema:.2e}", **shown, refresh=False)
                scoring += time.perf_counter() - ts
            bar.update(1)
            if checkpoint is not None and trainer.step % checkpoint_every == 0:
                trainer.save_checkpoint(checkpoint)
    except KeyboardInterrupt:
        if checkpoint is not None:
            trainer.save_checkpoint(checkpoint)
            print(f"\ninterrupted; checkpoint at step {trainer.step} in {checkpoint} (resume with --resume)",
                  file=sys.stderr)
        raise
    finally:
        bar.close()
    seconds = time.perf_counter() - t0 - scoring
    meta = {"train_seconds": round(seconds, 1), "score_seconds": round(scoring, 1)} | (extra_meta or {})
    model = trainer.export(meta)
    model.save(out)
    if checkpoint is not None:
        trainer.save_checkpoint(checkpoint)
    return model


def _check_checkpoint_path(path: Path) -> None:
    """Refuse before training a checkpoint that could never be written (a folder, a file as its folder)."""
    if path.is_dir():
        raise NnhdlError(f"--checkpoint {path}: is a folder; give a file name")
    ancestor = path.parent if str(path.parent) else Path(".")
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise NnhdlError(f"--checkpoint {path}: {ancestor} is not a folder")
    if not writable(ancestor):
        raise NnhdlError(f"--checkpoint {path}: cannot write in {ancestor}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="fpga_qb", help="fpga_qb, fpga_po2, mcu, fpga_wide or a layer-list JSON (default fpga_qb)")
    p.add_argument("--out", required=True, help="model file to write (.npz)")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="optimiser steps (default: the bundled model's setting for fpga_qb/fpga_po2/mcu/fpga_wide, else 3000)")
    p.add_argument("--batch", type=int_range(1, 4096), default=None, help="windows per step (default 32)")
    p.add_argument("--window", type=int_range(1, 1 << 20), default=None,
                   help="window length in samples (default: receptive field + 255)")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="peak Adam learning rate, warm-up then cosine decay (default 1e-2 for the reference "
                        "configurations, else 3e-3)")
    p.add_argument("--data", default="synthetic", help="'synthetic' or a folder of WAV recordings with JSON sidecars")
    p.add_argument("--sample-rate", type=int_range(1, MAX_SAMPLE_RATE), default=None, help="sample rate in Hz (default: the configuration's)")
    p.add_argument("--seed", type=seed, default=None, help="random seed for weights and data (default 0)")
    p.add_argument("--qat-from", type=nonneg_int, default=0,
                   help="step from which the forward pass is quantised (default 0: quantised throughout)")
    p.add_argument("--init", default=None,
                   help="start from this model file's weights (fine-tuning) instead of random ones")
    p.add_argument("--checkpoint", default=None, help="checkpoint file (default runs/OUT_STEM.ckpt.npz)")
    p.add_argument("--checkpoint-every", type=positive_int, default=500, help="steps between checkpoints (default 500)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--score-every", type=nonneg_int, default=2000,
                   help="steps between held-out corner/edge scores on the progress line (default 2000, 0: never)")
    p.add_argument("--report", action="store_true",
                   help="then evaluate the model (python -m training.evaluate) and write its report next to it")


def run(args: argparse.Namespace) -> int:
    from .defaults import DEFAULTS, GENERIC

    d = DEFAULTS.get(args.config, GENERIC)
    for key in ("steps", "batch", "lr", "seed"):
        if getattr(args, key) is None:
            setattr(args, key, d[key])
    if args.init is None:
        args.init = d.get("init")
    cfg = TrainConfig(args.config, args.steps, args.batch, args.window, args.lr, args.seed, args.data,
                      args.sample_rate, args.qat_from, init=args.init)
    out = Path(args.out)
    if args.checkpoint:
        ckpt = Path(args.checkpoint)
    else:  # not next to the model: bundled models live in a package folder
        ckpt = Path("runs") / (out.stem + ".ckpt.npz")
    model = train(cfg, out, ckpt, args.resume, not args.quiet, args.checkpoint_every,
                  {"command": "python -m training.train " + " ".join(_argv_for_meta(args))}, args.score_every)
    fl = model.meta["final_loss"]
    print(f"wrote {out}: {model.name}, {model.params:,} parameters, {model.meta['steps']} steps in "
          f"{model.meta['train_seconds']} s; validation loss {fl['quantised']:.3e} (quantised), "
          f"{fl['float']:.3e} (float)")
    if args.report:
        from .evaluate import main as evaluate_main

        return evaluate_main(["--model", str(out)])
    return 0


def _argv_for_meta(args: argparse.Namespace) -> list[str]:
    parts = [f"--config {args.config}", f"--steps {args.steps}", f"--batch {args.batch}", f"--lr {args.lr:g}",
             f"--seed {args.seed}", f"--data {args.data}"]
    if args.window:
        parts.append(f"--window {args.window}")
    if args.sample_rate:
        parts.append(f"--sample-rate {args.sample_rate}")
    if args.qat_from:
        parts.append(f"--qat-from {args.qat_from}")
    if args.init:
        parts.append(f"--init {args.init}")
    parts.append(f"--out {args.out}")
    if args.report:
        parts.append("--report")
    return parts


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    return run_cli("training.train", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
