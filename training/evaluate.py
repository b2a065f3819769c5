"""``python -m training.evaluate``: a model's quality on the held-out waveshaper set.

Measured with the **golden integer model** (:func:`nnhdl.reference.evaluate`)
— what the FPGA and the MCU compute — and, for comparison, with the model's
weights as real numbers without any quantisation
(:func:`nnhdl.reference.evaluate_float`).  The figure of merit is the
normalised MSE (MSE / variance of the target) on output channel 0 after the
receptive field, pooled over the test windows of each point: the four
corners, alpha = 0.25 / 0.5 / 0.75 on every edge (the DESIGN §5 cross-fade)
and a 3 x 3 grid inside the square (the bilinear constant-power blend of
:func:`training.data.blend`, kept out of the edge score).

Also checks that the JAX quantised forward pass (float64) reproduces the
golden model's integers exactly on the exported file.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nnhdl import reference
from nnhdl.argtypes import ArgumentParser, int_range, output_dir
from nnhdl.errors import NnhdlError, run_cli
from nnhdl.model import Model, write_atomically

from .data import CORNER_SCALE, CORNERS, test_set, triangle, wave

__all__ = ["Scores", "score", "evaluate_model", "main"]

#: Frequency bands for the per-band breakdown (Hz).
BANDS = (("20-200 Hz", 0.0, 200.0), ("200-2000 Hz", 200.0, 1e9))
#: fpga_qb's original quality goal (golden model, held-out set): its minimum bar.
GOAL_MEAN, GOAL_WORST = 0.02, 0.05
#: Goals of every bundled model (issue 13): (mean, worst) over the corners / the edge points.
CORNER_GOAL = (0.010, 0.025)
EDGE_GOAL = (0.020, 0.050)
#: Where on every edge the edge score is measured (alpha = weight of the edge's first corner).
EDGE_ALPHAS = (0.25, 0.5, 0.75)
#: Interior points (corner units) of the interior score.
INTERIOR = tuple((e0, e1) for e1 in (0.5, 0.0, -0.5) for e0 in (-0.5, 0.0, 0.5))


@dataclass
class Scores:
    corner: dict[str, float]  # golden model, per corner
    edge: dict[str, float]  # golden model, points on the edges
    corner_float: dict[str, float]
    edge_float: dict[str, float]
    interior: dict[str, float] = field(default_factory=dict)  # golden model, inside the square
    interior_float: dict[str, float] = field(default_factory=dict)
    jax_agreement: dict[str, Any] = field(default_factory=dict)
    corner_band: dict[str, dict[str, float]] = field(default_factory=dict)  # golden, per frequency band
    recordings: dict[str, float] = field(default_factory=dict)  # golden, held-out recordings

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.corner.values())))

    @property
    def worst(self) -> float:
        return float(np.max(list(self.corner.values())))

    def summary(self, kind: str) -> tuple[float, float]:
        """(mean, worst) NMSE over the ``corner``, ``edge`` or ``interior`` points (nan if none)."""
        v = list(getattr(self, kind).values())
        return (float(np.mean(v)), float(np.max(v))) if v else (float("nan"), float("nan"))

    def goals(self) -> dict[str, bool]:
        """Whether the corner and edge goals (:data:`CORNER_GOAL`, :data:`EDGE_GOAL`) are met."""
        return {kind: bool(m <= goal[0] and w <= goal[1])
                for kind, goal in (("corner", CORNER_GOAL), ("edge", EDGE_GOAL))
                for m, w in [self.summary(kind)]}

    def as_dict(self) -> dict[str, Any]:
        out = {"nmse_corner": self.corner, "nmse_edge": self.edge, "nmse_interior": self.interior,
               "nmse_corner_float": self.corner_float, "nmse_edge_float": self.edge_float,
               "nmse_interior_float": self.interior_float}
        for kind in ("corner", "edge", "interior"):
            out[f"nmse_{kind}_mean"], out[f"nmse_{kind}_worst"] = self.summary(kind)
        return out | {"goals_met": self.goals(), "nmse_corner_by_band": self.corner_band,
                      "nmse_recordings": self.recordings, "jax_agreement": self.jax_agreement}


def _check_task(model: Model) -> None:
    if model.input_dim < 3:
        raise NnhdlError(f"model has {model.input_dim} inputs; the waveshaper evaluation needs >= 3 (core, e0, e1)")


def score(model: Model, *, per_point: int = 12, length: int = 4096, float_model: bool = True,
          alphas: tuple[float, ...] = EDGE_ALPHAS, interior: tuple[tuple[float, float], ...] = INTERIOR) -> Scores:
    """Normalised MSE per corner, edge point and interior point on the held-out set."""
    _check_task(model)
    fmt = model.qformat
    segs = test_set(model.input_dim, model.sample_rate, fmt, per_point=per_point, length=length, alphas=alphas,
                    interior=interior)
    inside = {s.label for s in segs if s.edge < 0}
    start = model.receptive_field - 1
    err: dict[str, list[float]] = {}
    band_err: dict[tuple[str, str], list[float]] = {}
    errf: dict[str, list[float]] = {}
    var: dict[str, list[float]] = {}
    for s in segs:
        xm = fmt.quantize(s.x)
        y = fmt.to_float(reference.evaluate(model, xm)[start:, 0])
        t = s.y[start:].astype(np.float64)
        err.setdefault(s.label, []).append(float(np.sum((y - t) ** 2)))
        var.setdefault(s.label, []).append(t)
        if s.label in CORNERS:
            band = next(name for name, lo, hi in BANDS if lo <= s.freq < hi)
            band_err.setdefault((s.label, band), []).append(float(np.sum((y - t) ** 2)))
        if float_model:
            yf = reference.evaluate_float(model, fmt.to_float(xm))[start:, 0]
            errf.setdefault(s.label, []).append(float(np.sum((yf - t) ** 2)))
    nmse, nmsef = {}, {}
    for label, e in err.items():
        t = np.concatenate(var[label])
        denom = float(np.sum((t - t.mean()) ** 2))
        nmse[label] = float(np.sum(e) / denom)
        if float_model:
            nmsef[label] = float(np.sum(errf[label]) / denom)
    def part(d: dict[str, float], kind: str) -> dict[str, float]:
        where = {"corner": lambda k: k in CORNERS, "interior": lambda k: k in inside,
                 "edge": lambda k: k not in CORNERS and k not in inside}[kind]
        return {k: v for k, v in d.items() if where(k)}

    bands: dict[str, dict[str, float]] = {}
    for (label, band), e in band_err.items():
        # normalised by the corner's pooled variance, so the bands add up to the corner's NMSE
        t_all = np.concatenate(var[label])
        bands.setdefault(label, {})[band] = float(np.sum(e) / np.sum((t_all - t_all.mean()) ** 2))
    return Scores(part(nmse, "corner"), part(nmse, "edge"), part(nmsef, "corner"), part(nmsef, "edge"),
                  part(nmse, "interior"), part(nmsef, "interior"), corner_band=bands)


def score_recordings(model: Model, folder: str) -> dict[str, float]:
    """NMSE of the golden model on the held-out part (last 20 %) of every recorded corner."""
    from .data import RecordingData

    _check_task(model)
    data = RecordingData(folder, model.input_dim, model.sample_rate, model.qformat)
    fmt = model.qformat
    start = model.receptive_field - 1
    out = {}
    for name, corner, x, t in data.held_out():
        if len(t) <= start + 1:
            raise NnhdlError(f"{name}: held-out part is shorter than the receptive field ({model.receptive_field})")
        y = fmt.to_float(reference.evaluate(model, fmt.quantize(x))[start:, 0])
        t = t[start:]
        out[f"{name} ({corner[0]:+g},{corner[1]:+g})"] = float(np.sum((y - t) ** 2) / np.sum((t - t.mean()) ** 2))
    return out


def jax_agreement(model: Model, samples: int = 4096, seed: int = 0) -> dict[str, Any]:
    """JAX quantised forward pass (float64) vs the golden model on waveshaper and full-range random input."""
    from .model import golden_equivalent

    fmt = model.qformat
    rng = np.random.default_rng(seed)
    inputs = [fmt.quantize(s.x) for s in test_set(model.input_dim, model.sample_rate, fmt, per_point=1, length=samples)]
    inputs.append(rng.integers(fmt.min_int, fmt.max_int + 1, size=(samples, model.input_dim)))
    total = same = 0
    for xm in inputs:
        a = golden_equivalent(model, xm)
        b = reference.evaluate(model, xm)
        total += b.size
        same += int(np.sum(a == b))
    return {"values": total, "identical": same, "exact": same == total}


# -- pictures ----------------------------------------------------------------

def _render_point(model: Model, e: tuple[float, float], freq: float, periods: float) -> tuple[np.ndarray, np.ndarray]:
    """Core wave and golden output (model units) at embedding ``e`` (corner units)."""
    fmt = model.qformat
    rf = model.receptive_field
    n = rf - 1 + int(round(periods * model.sample_rate / freq))
    phase = np.mod(freq * np.arange(n) / model.sample_rate, 1.0)
    x = np.zeros((n, model.input_dim))
    x[:, 0] = CORNER_SCALE * triangle(phase)
    x[:, 1:3] = CORNER_SCALE * np.asarray(e)
    xm = fmt.quantize(x)
    y = fmt.to_float(reference.evaluate(model, xm)[:, 0])
    return fmt.to_float(xm[rf - 1:, 0]), y[rf - 1:]


def plot_waveforms(model: Model, path: Path, freq: float = 200.0) -> None:
    """Target vs golden-model output for each corner."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(8, 4.8), sharex=True, sharey=True)
    for ax, name in zip(axes.ravel(), CORNERS):
        core, y = _render_point(model, CORNERS[name], freq, 2.0)
        phase = np.mod(freq * (np.arange(len(y)) + model.receptive_field - 1) / model.sample_rate, 1.0)
        t = 1000.0 * np.arange(len(y)) / model.sample_rate
        ax.plot(t, core, color="0.8", lw=1, label="core (input)")
        ax.plot(t, CORNER_SCALE * wave(name, phase), color="C0", lw=1.5, label="target")
        ax.plot(t, y, color="C3", lw=1, ls="--", label="golden model")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("ms")
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{model.name or 'model'}: corners at {freq:g} Hz, {model.sample_rate} Hz sample rate "
                 "(integer golden model)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=72, format="png")
    plt.close(fig)


def plot_grid(model: Model, path: Path, n: int = 5, freq: float = 200.0) -> None:
    """Output waveforms over an n x n grid of the embedding space (corners at the grid corners)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(n, n, figsize=(8, 7), sharex=True, sharey=True)
    vals = np.linspace(-1.0, 1.0, n)
    corner_of = {v: k for k, v in CORNERS.items()}
    for r, e1 in enumerate(vals[::-1]):
        for c, e0 in enumerate(vals):
            ax = axes[r, c]
            _, y = _render_point(model, (e0, e1), freq, 2.0)
            on_edge = abs(e0) == 1.0 or abs(e1) == 1.0
            ax.plot(y, color="C3" if (e0, e1) in corner_of else ("C0" if on_edge else "0.4"), lw=1)
            ax.set_ylim(-1.6, 1.6)
            ax.set_xticks([])
            ax.set_yticks([])
            label = corner_of.get((e0, e1), f"({e0:+.1f},{e1:+.1f})")
            ax.set_title(label, fontsize=7, pad=2)
    fig.suptitle(f"{model.name or 'model'}: golden-model output across the embedding (e0 right, e1 up)\n"
                 "red: corners, blue: edges (cross-fade), grey: interior (bilinear constant-power blend)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=64, format="png")
    plt.close(fig)


def _loss_history(model: Model) -> np.ndarray | None:
    """``meta["loss_history"]`` as ``[n, 2]`` (step, loss); None when the model has none."""
    hist = model.meta.get("loss_history")
    if not hist:
        return None
    try:
        h = np.asarray(hist, dtype=np.float64)
    except (TypeError, ValueError):
        h = np.zeros(0)
    if h.ndim != 2 or h.shape[1] != 2 or not np.all(np.isfinite(h)):
        raise NnhdlError("meta.loss_history: must be a list of [step, loss] pairs of finite numbers")
    return h


def plot_loss(model: Model, path: Path) -> bool:
    """Training loss curve from the model's meta (if it has one)."""
    h = _loss_history(model)
    if h is None:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.semilogy(h[:, 0], h[:, 1], color="C0")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (MSE, quantised)")
    ax.grid(alpha=0.3, which="both")
    ax.set_title(f"{model.name or 'model'}: quantisation-aware training loss", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=72, format="png")
    plt.close(fig)
    return True


# -- report --------------------------------------------------------------------

def _table(rows: list[tuple[str, float, float]]) -> list[str]:
    out = ["| point | NMSE golden (integer) | NMSE float weights |", "|---|---:|---:|"]
    out += [f"| {k} | {g:.4f} | {f:.4f} |" for k, g, f in rows]
    return out


def write_report(model: Model, scores: Scores, out_dir: Path, stem: str, pictures: dict[str, str],
                 model_path: Path, recordings: dict[str, float] | None = None) -> Path:
    meta = model.meta
    lines = [f"# {model.name or stem}: evaluation", ""]
    lines += [f"{model.qformat}, rounding {model.rounding}, {model.input_dim} in -> {model.output_dim} out, "
              f"{model.sample_rate} Hz, {model.params:,} parameters, {model.macs_per_sample:,} MACs/sample, "
              f"receptive field {model.receptive_field} samples ({model.receptive_field_ms:.2f} ms). "
              f"Fingerprint `{model.fingerprint()[:16]}`.", ""]
    if meta.get("command"):
        lines += [f"Trained with `{meta['command']}` ({meta.get('steps')} steps, "
                  f"{meta.get('train_seconds', '?')} s of training on a shared 2-core machine, data "
                  f"{meta.get('data')}, seed {meta.get('seed')}).", ""]
    fl = meta.get("final_loss")
    if isinstance(fl, dict) and "quantised" in fl:
        lines += [f"Final validation loss (MSE in model units^2 on output 0): {fl['quantised']:.3e} quantised "
                  f"forward pass, {fl.get('float', float('nan')):.3e} float forward pass.", ""]
    from nnhdl.configs import REFERENCE

    if meta.get("trained_by", "").startswith("training.train") and model.name in REFERENCE:
        lines += [f"Reproduce (settings in `training/defaults.py`): `python -m training.train --config {model.name} "
                  f"--out nnhdl/models/{model.name}.npz --report`", ""]
    lines += ["Held-out set: fixed seed, never used in training; 12 windows per point, frequencies log-uniform "
              "20 Hz - 2 kHz, 4096 samples each, scored after the receptive field. NMSE = MSE / variance of "
              "the target. *Golden* is `nnhdl.reference.evaluate` (the integers the FPGA/MCU compute); "
              "*float weights* runs the same integer weights without any rounding or saturation.", ""]
    corner_rows = [(k, v, scores.corner_float.get(k, float("nan"))) for k, v in scores.corner.items()]
    edge_rows = [(k, v, scores.edge_float.get(k, float("nan"))) for k, v in scores.edge.items()]
    inner_rows = [(k, v, scores.interior_float.get(k, float("nan"))) for k, v in scores.interior.items()]
    met = scores.goals()
    lines += ["## Summary", "", "| points | NMSE mean | worst | goal (mean, worst) |", "|---|---:|---:|---|"]
    for kind, title, goal in (("corner", "corners", CORNER_GOAL), ("edge", "edges (alpha 0.25/0.5/0.75)", EDGE_GOAL),
                              ("interior", "interior (3 x 3 grid)", None)):
        m, w = scores.summary(kind)
        if np.isnan(m):
            continue
        g = f"<= {goal[0]}, <= {goal[1]}: {'met' if met[kind] else 'NOT met'}" if goal else "none (no DESIGN target)"
        lines.append(f"| {title} | {m:.4f} | {w:.4f} | {g} |")
    lines += [""]
    lines += ["## Corners", ""] + _table(corner_rows) + [""]
    goal = "meets" if scores.mean <= GOAL_MEAN and scores.worst <= GOAL_WORST else "does NOT meet"
    lines += [f"Mean over corners **{scores.mean:.4f}**, worst **{scores.worst:.4f}** "
              f"({goal} the original fpga_qb bar: mean <= {GOAL_MEAN}, worst <= {GOAL_WORST}).", ""]
    alphas = sorted({s.split("@")[1] for s in scores.edge if "@" in s})
    lines += [f"## Between corners (constant-power cross-fade, alpha = {', '.join(alphas)})", "",
              "alpha is the weight of the first-named corner (DESIGN §5).", ""] + _table(edge_rows) + [""]
    if inner_rows:
        lines += ["## Inside the square (bilinear constant-power blend of the four corners)", "",
                  "(e0, e1) in corner units. DESIGN §5 fixes no target here; nnhdl's is `training.data.blend` "
                  "(it equals the cross-fade on every edge). Not part of the edge score.", ""] + _table(inner_rows) + [""]
    if scores.corner_band:
        lines += ["Where the corner error comes from (share of each corner's NMSE by test frequency; fast waves "
                  "have more discontinuities per second, and a causal network needs a few samples to see a "
                  "turning point of the core wave):", "",
                  "| corner | " + " | ".join(b for b, _, _ in BANDS) + " |", "|---|" + "---:|" * len(BANDS)]
        for k, d in scores.corner_band.items():
            lines.append(f"| {k} | " + " | ".join(f"{d.get(b, 0.0):.4f}" for b, _, _ in BANDS) + " |")
        lines.append("")
    worse = [k for k, g, f in corner_rows + edge_rows + inner_rows if f > 2 * g + 0.01]
    if worse:
        lines += [f"The float-weights column is much worse at {', '.join(worse)}: the trained integer network "
                  "relies on Q-format saturation (layer outputs clipped to the format's range), which the "
                  "unquantised float network does not have. Training optimised the integer behaviour.", ""]
    if recordings:
        lines += ["## Recordings (held-out last 20 % of each file)", "", "| recording (corner) | NMSE golden |",
                  "|---|---:|"] + [f"| {k} | {v:.4f} |" for k, v in recordings.items()] + [""]
    ag = scores.jax_agreement
    if ag:
        lines += ["## JAX forward pass vs golden model", "",
                  f"JAX quantised forward pass in float64 on the exported integers: {ag['identical']:,} of "
                  f"{ag['values']:,} output values identical to the golden model "
                  f"({'exact' if ag['exact'] else 'MISMATCH'}).", ""]
    titles = {"waveforms": "Corners: target vs golden-model output", "grid": "Across the embedding space",
              "loss": "Training loss"}
    for key, fname in pictures.items():
        lines += [f"## {titles.get(key, key)}", "", f"![{key}]({fname})", ""]
    path = out_dir / f"{stem}.md"
    text = "\n".join(lines)
    write_atomically(path, lambda f: f.write(text), mode="w")
    return path


def evaluate_model(model_path: Path, out_dir: Path | None, *, per_point: int = 12, length: int = 4096,
                   pictures: bool = True, progress: bool = True,
                   recordings: str | None = None) -> tuple[Scores, list[Path]]:
    from nnhdl.outputs import output_file, staged_dir

    model = Model.load(model_path)
    _check_task(model)
    if length <= model.receptive_field:
        raise NnhdlError(f"--length {length}: test windows must be longer than the receptive field "
                         f"({model.receptive_field} samples)")
    if pictures:
        _loss_history(model)  # refuse a malformed meta before minutes of scoring, not after
    if recordings:
        from .data import RecordingData

        RecordingData(recordings, model.input_dim, model.sample_rate, model.qformat)  # likewise
    shown_dir = out_dir or model_path.parent
    out_dir = staged_dir(shown_dir)
    stem = model_path.stem
    say = (lambda s: print(s, file=sys.stderr)) if progress else (lambda s: None)
    say("scoring the held-out set with the golden model ...")
    scores = score(model, per_point=per_point, length=length)
    say("checking the JAX forward pass against the golden model (float64) ...")
    scores.jax_agreement = jax_agreement(model)
    rec = None
    if recordings:
        say(f"scoring the held-out part of the recordings in {recordings} ...")
        rec = score_recordings(model, recordings)
        scores.recordings = rec
    written: list[Path] = []
    pics: dict[str, str] = {}
    if pictures:
        say("drawing pictures ...")
        for key, fn in (("waveforms", plot_waveforms), ("grid", plot_grid), ("loss", plot_loss)):
            p = out_dir / f"{stem}_{key}.png"
            with output_file(p, "picture") as tmp:
                drawn = fn(model, tmp) is not False
                if not drawn:
                    tmp.unlink()
            if drawn:
                pics[key] = p.name
                written.append(shown_dir / p.name)
    report = write_report(model, scores, out_dir, stem, pics, model_path, rec)
    written.append(shown_dir / report.name)
    return scores, written


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model file (.npz)")
    p.add_argument("--out", type=output_dir, default=None, help="folder for the report and PNGs (default: next to the model)")
    p.add_argument("--per-point", type=int_range(1, 256), default=12, help="test windows per corner/edge point (default 12)")
    p.add_argument("--length", type=int_range(2, 1 << 16), default=4096, help="samples per test window (default 4096)")
    p.add_argument("--no-pictures", action="store_true", help="scores only")
    p.add_argument("--data", default=None,
                   help="also score the held-out part of a folder of WAV recordings (as for training.train --data)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    args = p.parse_args(argv)
    return run_cli("training.evaluate", lambda: _evaluate_cli(args))


def _evaluate_cli(args: argparse.Namespace) -> int:
    scores, written = evaluate_model(Path(args.model), Path(args.out) if args.out else None,
                                     per_point=args.per_point, length=args.length,
                                     pictures=not args.no_pictures, recordings=args.data)
    if args.json:
        print(json.dumps(scores.as_dict(), indent=1))
    else:
        print("NMSE (golden integer model / float weights):")
        for k, v in {**scores.corner, **scores.edge, **scores.interior}.items():
            fl = {**scores.corner_float, **scores.edge_float, **scores.interior_float}.get(k, float("nan"))
            print(f"  {k:<20} {v:.4f}  {fl:.4f}")
        met = scores.goals()
        for kind, title, goal in (("corner", "corners", CORNER_GOAL), ("edge", "edges", EDGE_GOAL),
                                  ("interior", "interior", None)):
            m, w = scores.summary(kind)
            g = f" (goal <= {goal[0]}, <= {goal[1]}: {'met' if met[kind] else 'NOT met'})" if goal else ""
            print(f"{title}: mean {m:.4f}, worst {w:.4f}{g}")
        for k, v in scores.recordings.items():
            print(f"  recording {k}: {v:.4f}")
        ag = scores.jax_agreement
        print(f"JAX float64 vs golden: {ag['identical']}/{ag['values']} identical")
        for w in written:
            print(f"wrote {w}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
