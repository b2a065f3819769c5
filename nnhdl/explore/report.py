"""What a sweep leaves in ``--out``: the tables, the Pareto pictures and the recommendation.

Every file goes through :func:`nnhdl.model.write_atomically`, so inside the
command's transaction they appear together when the sweep succeeds (the
cache is written separately, durably, as points finish).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Sequence

from ..model import write_atomically

__all__ = ["columns", "write_tables", "TIMING_PHASES"]

TIMING_PHASES = ("train", "score", "plan", "mcu", "pnr")


#: the columns' order in the tables (any others follow in first-seen order)
ORDER = ("point_id", "layers", "filters", "kernel_size", "dilation_growth", "po2", "qformat", "rounding", "activation",
         "board", "sample_rate", "clock_mhz", "status", "reason", "params", "macs_per_sample", "receptive_field",
         "train_loss", "validation_loss", "nmse_corner_mean", "nmse_corner_worst", "nmse_morph_mean",
         "nmse_morph_worst", "cost_percent", "clock_mhz_planned", "lanes")


def columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Every key of every row: :data:`ORDER` first, then the figures in first-seen order (FPGA and Daisy rows
    have different ones)."""
    present = {k for r in rows for k in r}
    seen: dict[str, None] = {k: None for k in ORDER if k in present}
    for r in rows:
        for k in r:
            seen.setdefault(k, None)
    return list(seen)


def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    return str(v)


def _json_value(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def write_tables(out: Path, rows: Sequence[dict[str, Any]], seconds: dict[str, dict[str, float]],
                 ga_history: Sequence[dict[str, Any]] = ()) -> None:
    """``results.csv`` and ``results.json`` (one object per point, every knob and figure named),
    ``timings.csv`` (wall-clock seconds per phase: the only engine-dependent numbers, kept apart) and, for
    the GA, ``ga_history.csv`` (the best point of each population and generation)."""
    cols = columns(rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_csv_value(r.get(c)) for c in cols])
    text = buf.getvalue()
    write_atomically(out / "results.csv", lambda f: f.write(text), mode="w")
    js = json.dumps({"columns": cols, "points": [{c: _json_value(r.get(c)) for c in cols} for r in rows]},
                    indent=1)
    write_atomically(out / "results.json", lambda f: f.write(js + "\n"), mode="w")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["point_id", *TIMING_PHASES])
    for r in rows:
        s = seconds.get(r["point_id"], {})
        w.writerow([r["point_id"], *(f"{s.get(p, 0.0):.3f}" for p in TIMING_PHASES)])
    timings = buf.getvalue()
    write_atomically(out / "timings.csv", lambda f: f.write(timings), mode="w")
    if ga_history:
        buf = io.StringIO()
        cols = list(ga_history[0])
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for h in ga_history:
            w.writerow([_csv_value(h[c]) for c in cols])
        history = buf.getvalue()
        write_atomically(out / "ga_history.csv", lambda f: f.write(history), mode="w")


# -- the Pareto pictures --------------------------------------------------------------------------------

#: (file, cost column, axis label, boards it applies to)
AXES = (
    ("pareto_mult18.png", "mult18", "MULT18X18D (planner; ringed: nextpnr)", "fpga"),
    ("pareto_lut.png", "lut", "LUT4 (planner estimate; ringed: nextpnr's TRELLIS_COMB)", "fpga"),
    ("pareto_dp16kd.png", "dp16kd", "DP16KD (planner; ringed: nextpnr)", "fpga"),
    ("pareto_instructions.png", "instructions", "instructions per inference (QEMU Cortex-M7)", "daisy"),
)
ERROR = "nmse_corner_mean"


def group_name(r: dict[str, Any]) -> str:
    clock = "" if r["board"] == "daisy" else (f" @ {r['clock_mhz']:g} MHz" if r.get("clock_mhz") else "")
    return f"{r['board']} {r['sample_rate'] / 1000:g} kHz{clock}"


def _groups(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(group_name(r), []).append(r)
    return dict(sorted(out.items()))


def _usable(r: dict[str, Any], cost: str) -> bool:
    return r.get("status") == "ok" and isinstance(r.get(cost), (int, float)) and \
        math.isfinite(r.get(ERROR, math.nan))


def plot_fronts(out: Path, rows: Sequence[dict[str, Any]], references: Sequence[dict[str, Any]]) -> list[str]:
    """One PNG per cost axis that has points: held-out corner NMSE against the cost, one colour per board and
    rate, the front a step line, dominated points faded, the bundled models as labelled stars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..outputs import output_file
    from .front import pareto_front

    written = []
    for name, cost, label, kind in AXES:
        pts = [r for r in rows if _usable(r, cost) and (r["board"] == "daisy") == (kind == "daisy")]
        if not pts:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for n, (g, members) in enumerate(_groups(pts).items()):
            colour = f"C{n % 10}"
            xy = [(m[ERROR], float(m[cost])) for m in members]
            front = pareto_front(xy)
            on = set(front)
            ax.scatter([c for i, (e, c) in enumerate(xy) if i not in on], [e for i, (e, c) in enumerate(xy)
                       if i not in on], color=colour, alpha=0.25, s=18, linewidths=0)
            fx, fy = [xy[i][1] for i in front], [xy[i][0] for i in front]
            ax.scatter(fx, fy, color=colour, s=26, label=f"{g} ({len(front)} on the front of {len(xy)})")
            ax.step(fx, fy, where="post", color=colour, lw=1.2)
            placed = [m for m in members if m.get(f"{cost}_source") == "placed_and_routed"]
            if placed:  # nextpnr's figure, not the planner's: ringed
                ax.scatter([float(m[cost]) for m in placed], [m[ERROR] for m in placed], s=90, facecolors="none",
                           edgecolors="k", linewidths=0.8, label="placed and routed (nextpnr)" if n == 0 else None)
            for ref in references:
                if group_name(ref) == g and _usable(ref, cost):
                    ax.scatter([ref[cost]], [ref[ERROR]], marker="*", s=120, color=colour, edgecolors="k",
                               linewidths=0.6, zorder=5)
                    ax.annotate(ref["reference"], (ref[cost], ref[ERROR]), fontsize=7, xytext=(4, 4),
                                textcoords="offset points")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("held-out corner NMSE (golden model)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title("Pareto front: faded points are dominated, stars the bundled models", fontsize=9)
        fig.tight_layout()
        with output_file(out / name, "picture") as tmp:
            fig.savefig(tmp, dpi=72, format="png")
        plt.close(fig)
        written.append(name)
    return written


# -- report.md ----------------------------------------------------------------------------------------

def recommend(members: Sequence[dict[str, Any]]) -> tuple[dict[str, Any] | None, str]:
    """The point to build for one board and rate, and why: the cheapest (binding resource's share) that meets
    the corner goal of the bundled models, else the lowest held-out error."""
    from training.evaluate import CORNER_GOAL

    ok = [r for r in members if r.get("status") == "ok" and math.isfinite(r.get(ERROR, math.nan))]
    if not ok:
        return None, "no point could be built and trained"
    # a point placed and routed below its planned clock is not recommended while another one remains
    ok = [r for r in ok if r.get("meets_clock") is not False] or ok
    good = [r for r in ok if r[ERROR] <= CORNER_GOAL[0] and r["nmse_corner_worst"] <= CORNER_GOAL[1]]
    if good:
        best = min(good, key=lambda r: (r["cost_percent"], r[ERROR], r["point_id"]))
        return best, (f"the cheapest of {len(good)} points meeting the corner goal (NMSE mean <= "
                      f"{CORNER_GOAL[0]}, worst <= {CORNER_GOAL[1]})")
    best = min(ok, key=lambda r: (r[ERROR], r["cost_percent"], r["point_id"]))
    return best, (f"no point met the corner goal (NMSE mean <= {CORNER_GOAL[0]}, worst <= {CORNER_GOAL[1]}) "
                  "with this budget; the lowest held-out error")


def reproduce(r: dict[str, Any], budget: dict[str, Any], config: str) -> list[str]:
    """The commands that train this point again and cost it the way the sweep did."""
    pid = r["point_id"]
    cmds = [f"python -m training.train --config {config} --steps {budget['steps']} --batch {budget['batch']} "
            f"--lr {budget['lr']:g} --seed {budget['seed']} --sample-rate {r['sample_rate']} --out {pid}.npz"]
    if r["board"] == "daisy":
        cmds.append(f"python -m mcu.check --model {pid}.npz --qemu-samples 200")
    else:
        cmds.append(f"python -m nnhdl plan {pid}.npz --board {r['board']} --sample-rate {r['sample_rate']}"
                    + (f" --clock-mhz {r['clock_mhz']:g}" if r.get("clock_mhz") else "")
                    + (" --latency-in-period" if r.get("objective") == "latency" else ""))
    return cmds


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def write_report(out: Path, space, rows: Sequence[dict[str, Any]], references: Sequence[dict[str, Any]],
                 pictures: Sequence[str], command: str) -> None:
    """``report.md``: the budget, the recommended point per board and sample rate with the commands that
    reproduce it, each group's front, and where every figure comes from."""
    from .front import pareto_front
    from .space import network_config

    budget = space.budget.as_dict()
    lines = ["# Design-space exploration", "",
             f"Space `{Path(space.path).name}`, strategy `{space.strategy}`, {len(rows)} points. Reproduce the "
             f"whole sweep with `{command}` (cached points are skipped).", "",
             f"Every point trained quantisation-aware for {budget['steps']} steps (batch {budget['batch']}, lr "
             f"{budget['lr']:g}, seed {budget['seed']}) and scored by the golden integer model on the held-out "
             f"set ({budget['score_per_point']} windows of {budget['score_length']} samples per corner and edge "
             "point; a network whose receptive field exceeds half a window gets windows longer by its receptive field). "
             "Error = corner NMSE mean; `morph` = the edges between corners.", "",
             "Sources: FPGA figures are the folding planner's (`estimated`; MULT18X18D, DP16KD and cycles follow "
             "exactly from the plan, LUT/FF are estimates) unless the point was placed and routed "
             "(`--pnr-front`: nextpnr's counts, `placed_and_routed`, LUT = TRELLIS_COMB, and its Fmax); Daisy instruction counts are QEMU's (`emulated`), "
             "flash/RAM the cross-compiled build's (`compiled`).", ""]
    missed = [r for r in rows if r.get("meets_clock") is False]
    if missed:
        lines += ["Placed and routed below their planned clock (not recommended): " + ", ".join(
            f"`{r['point_id']}` (Fmax {r['fmax_mhz']} MHz < {r['clock_mhz_planned']:g})" for r in missed)
            + ".", ""]
    groups = _groups(rows)
    for g, members in groups.items():
        best, why = recommend(members)
        lines += [f"## {g}", ""]
        if best is None:
            lines += [f"No recommendation: {why}.", ""]
        else:
            config = f"points/{best['point_id']}.json"
            cfg = network_config(best, space.input_dim, space.output_dim, best["point_id"])
            text = json.dumps(cfg, indent=1)
            (out / "points").mkdir(exist_ok=True)
            write_atomically(out / config, lambda f, t=text: f.write(t + "\n"), mode="w")
            cost = (f"{best['instructions']:,.0f} instructions per inference ({best['cost_percent']:.2f}% of the "
                    "core)" if best["board"] == "daisy" else
                    f"{best['mult18']} MULT18X18D, {best['dp16kd']} DP16KD, ~{best['lut']} LUT4, lanes "
                    f"{best['lanes']} at {best['clock_mhz_planned']:g} MHz"
                    + (f" (placed and routed: nextpnr's counts, Fmax {best['fmax_mhz']} MHz"
                       + ("" if best.get("meets_clock") else ", BELOW the planned clock") + ")"
                       if best.get("fmax_mhz_source") == "placed_and_routed" else " (planner estimates)"))
            lines += [f"**Recommended: `{best['point_id']}`** ({why}): {best['layers']} layers x "
                      f"{best['filters']} filters, kernel {best['kernel_size']}, dilation growth "
                      f"{best['dilation_growth']}, po2 {best['po2']}, {best['qformat']}, {best['activation']}; "
                      f"corner NMSE {best[ERROR]:.4g} (worst {best['nmse_corner_worst']:.4g}), morph "
                      f"{best['nmse_morph_mean']:.4g}; {cost}.", "", "```",
                      *reproduce(best, budget, config), "```", ""]
        cost_col = "instructions" if members[0]["board"] == "daisy" else "mult18"
        ok = [r for r in members if _usable(r, cost_col)]
        front = [ok[i] for i in pareto_front([(r[ERROR], float(r[cost_col])) for r in ok])]
        bad = len(members) - len(ok)
        lines += [f"Front by {cost_col} ({len(front)} of {len(ok)} usable points"
                  + (f"; {bad} infeasible or failed" if bad else "") + "):", "",
                  "| point | layers | filters | K | growth | po2 | Q | corner NMSE | morph NMSE | "
                  + ("instructions | flash |" if cost_col == "instructions" else "MULT18 | DP16KD | ~LUT |"),
                  "|---" * (11 if cost_col == "instructions" else 12) + "|"]
        for r in front:
            placed = r.get("lut_source") == "placed_and_routed"
            fig = (f"{r['instructions']:,.0f} | {r['flash_bytes']:,} |" if cost_col == "instructions" else
                   f"{r['mult18']} | {r['dp16kd']} | {r['lut']}"
                   + (f" (nextpnr; Fmax {r['fmax_mhz']} MHz"
                      + ("" if r.get("meets_clock") else f" < {r['clock_mhz_planned']:g}") + ")" if placed else "")
                   + " |")
            lines.append(f"| `{r['point_id']}` | {r['layers']} | {r['filters']} | {r['kernel_size']} | "
                         f"{r['dilation_growth']} | {r['po2']} | {r['qformat']} | {_fmt(r[ERROR])} | "
                         f"{_fmt(r['nmse_morph_mean'])} | {fig}")
        refs = [x for x in references if group_name(x) == g]
        if refs:
            lines += ["", "Bundled models, scored and costed the same way: " + "; ".join(
                f"{x['reference']} corner NMSE {_fmt(x[ERROR])}, "
                + (x["reason"][:120] if x["status"] != "ok" else
                   f"{x['instructions']:,.0f} instructions" if x["board"] == "daisy" else
                   f"{x['mult18']} MULT18X18D, ~{x['lut']} LUT4") for x in refs) + "."]
        lines.append("")
    if pictures:
        lines += ["## Pictures", ""] + [f"![{p}]({p})" for p in pictures] + [""]
    text = "\n".join(lines)
    write_atomically(out / "report.md", lambda f: f.write(text), mode="w")
