"""Hardware at scale: plan each network for a board and sample rate, then place and route it for real.

    PYTHONPATH=. python benchmarks/hardware.py                       # every row (tens of minutes on 2 cores)
    PYTHONPATH=. python benchmarks/hardware.py --rows qb,qb_mclk     # some rows
    PYTHONPATH=. python benchmarks/hardware.py --plan-only           # planner figures only (seconds)
    PYTHONPATH=. python benchmarks/hardware.py --family colorlight_i5 # largest fpga_wide-shaped network per rate
    PYTHONPATH=. python benchmarks/hardware.py --fit --build-root DIR  # refit the LUT/FF estimate to finished rows

Each row: the planner's lanes for the network, board, sample rate and clock,
then the standalone Network through yosys ``synth_ecp5`` and nextpnr-ecp5
(YoWASP) on the board's part.  The ``i5_*`` rows first search the largest
member of fpga_wide's family (filters per layer) that the planner fits on the
Colorlight i5 at that rate, then build it.  Each row prints as it finishes;
the whole table follows and is written as JSON (``--json``, default
``build/bench-hardware/hardware.json``), with the estimator's MULT18X18D /
DP16KD / LUT / FF beside nextpnr's counts and the error in percent, and the
share of the part's MAC limit (its MULT18X18D x the cycle budget).  A row that
fails prints FAILED and the run goes on (non-zero exit at the end).  Nothing
here is asserted; figures are this machine's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.rows import Rows  # noqa: E402
from nnhdl.configs import random_model  # noqa: E402
from nnhdl.errors import NnhdlError  # noqa: E402
from nnhdl.hdl.planner import plan  # noqa: E402
from nnhdl.model import Model  # noqa: E402
from nnhdl.synth import PNR_CELLS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

#: name -> (network, board, sample rate, clock MHz or None for the planner's); network "family" = the
#: largest fpga_wide-shaped network the planner fits on the board at that rate
ROWS = {
    "qb": ("fpga_qb", "ecpix5", 192000, None),
    "qb_mclk": ("fpga_qb", "ecpix5", 192000, 49.152),  # MCLK alone: 256 cycles, no crossing
    "po2": ("fpga_po2", "ecpix5", 192000, None),
    "po2_i5": ("fpga_po2", "colorlight_i5", 192000, None),
    "wide": ("fpga_wide", "ecpix5", 192000, None),
    "i5_192k": ("family", "colorlight_i5", 192000, None),
    "i5_48k": ("family", "colorlight_i5", 48000, None),
}


def _model(name: str, board: str, rate: int) -> Model:
    """The bundled trained model when there is one (what users build), else random weights of that shape."""
    if name == "family":
        c, _ = largest_of_family(board, rate)
        if not c:
            raise NnhdlError(f"no member of fpga_wide's family fits the {board} at {rate} Hz")
        return family(c)
    bundled = ROOT / "nnhdl" / "models" / f"{name}.npz"
    return Model.load(str(bundled)) if bundled.exists() else random_model(name, seed=0)


def _err(pred: float, meas: float | None) -> str:
    return "-" if not meas else f"{100 * (pred - meas) / meas:+.0f}%"


#: the plan keys that decide the hardware built; the estimates (LUT, FF, ...) may be refitted without a rebuild
DESIGN_KEYS = ("model", "board", "sample_rate", "clock_mhz", "lanes", "cache_folds", "banks")


#: nnhdl.hdl's modules that only estimate (every other one decides the gates of a plan)
ESTIMATE_MODULES = ("__init__", "planner", "schedule")


def rtl_modules() -> list[str]:
    return sorted(f.stem for f in (ROOT / "nnhdl" / "hdl").glob("*.py") if f.stem not in ESTIMATE_MODULES)


def rtl_digest() -> str:
    """A hash of the RTL generators' code without comments and docstrings: a saved build is reused only
    while the generators that produced it are unchanged (an edited docstring does not force a rebuild)."""
    import ast
    import hashlib

    from nnhdl.yosys_recipes import RECIPES

    h = hashlib.sha256(repr(RECIPES).encode())  # the synthesis scripts' settings decide the gates too
    for name in rtl_modules():
        tree = ast.parse((ROOT / "nnhdl" / "hdl" / f"{name}.py").read_text())
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                    and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
        h.update(ast.dump(tree).encode())
    return h.hexdigest()[:16]


def _design(p: dict, rtl: str | None) -> tuple:
    return tuple(json.dumps(p.get(k)) for k in DESIGN_KEYS) + (rtl,)


def run_row(key: str, build_root: Path, plan_only: bool, reuse: bool = False, seed: int | None = None) -> dict:
    net_name, board, rate, clock = ROWS[key]
    started = time.perf_counter()
    model = _model(net_name, board, rate)
    p = plan(model, board, sample_rate=rate, clock_mhz=clock)
    row = {"row": key, "network": model.name or net_name, "board": board, "sample_rate": rate, "plan": p.to_json(),
           "rtl": rtl_digest(), "seed": seed}
    if plan_only:
        return row
    saved = build_root / key / "row.json"
    if reuse and saved.exists():
        done = json.loads(saved.read_text())
        if _design(done.get("plan", {}), done.get("rtl")) == _design(row["plan"], row["rtl"]) \
                and seed in (None, done.get("seed")):  # the same gates (and the asked-for placement seed, if any)
            done["plan"] = row["plan"]  # today's estimates beside the measured figures
            return done
        print(f"{key}: {saved} holds another plan or older RTL; building again", file=sys.stderr)
    saved.unlink(missing_ok=True)  # an interrupted build must not leave the last one's figures looking current
    (build_root / key).mkdir(parents=True, exist_ok=True)
    (build_root / key / "plan.json").write_text(json.dumps(row, indent=1) + "\n")  # for --fit, even if P&R fails
    from nnhdl.synth import place_and_route

    res = place_and_route(model, p.lanes, build_root / key, board=board, clock_mhz=p.clock_mhz, seed=seed)
    row["pnr"] = res.to_json()
    row["build_seconds"] = round(time.perf_counter() - started, 1)
    saved.write_text(json.dumps(row, indent=1) + "\n")  # written last: present only for a finished build
    return row


def family(channels: int) -> Model:
    """fpga_wide's shape with ``channels`` filters per K=4 layer (fpga_wide is 64)."""
    from nnhdl.configs import LayerSpec, NetworkSpec

    c = channels
    spec = NetworkSpec(f"wide{c}", 4, (LayerSpec(4, 1, c), LayerSpec(4, 4, c), LayerSpec(4, 16, c),
                                       LayerSpec(4, 64, c), LayerSpec(1, 1, 4, "qb", "none")))
    return random_model(spec, seed=0)


def largest_of_family(board: str, rate: int) -> tuple[int, dict | None]:
    """The most filters per layer the planner fits on ``board`` at ``rate`` (estimates, no P&R).

    Costs grow with the filters but not strictly (lanes and block shapes step), so the search goes on
    past a refusal and stops after 16 refusals in a row."""
    best, figures, misses = 0, None, 0
    for c in range(2, 257):
        try:
            p = plan(family(c), board, sample_rate=rate)
        except NnhdlError:
            misses += 1
            if misses == 16:
                break
            continue
        best, figures, misses = c, p.to_json(), 0
    return best, figures


def _saved_model(row: dict) -> Model:
    """The network a saved row was built from (a family member by its filters, else by name)."""
    name = row["network"]
    if ROWS.get(row["row"], ("",))[0] == "family":
        return family(int(name.removeprefix("wide")))
    return _model(name, row["board"], row["sample_rate"])


def fit(build_root: Path) -> int:
    """Fit of the LUT and FF estimates to the saved rows' nextpnr counts; prints it, changes nothing.

    LUT: TRELLIS_COMB - 4 x TRELLIS_DPR16X4 (LUT RAM, exact) = LUT_SCALE x the layers' logic model;
    FF: TRELLIS_FF = FF_SCALE x the layers' FF model (``nnhdl.hdl.schedule.raw_costs``).  A row counts once
    nextpnr has packed it (row.json, or plan.json beside nextpnr's log: the counts are final after packing)."""
    import numpy as np

    from nnhdl.hdl import schedule as sch

    data = []
    from nnhdl.synth import _parse_nextpnr

    for folder in sorted(p for p in build_root.iterdir() if p.is_dir()):
        if (folder / "row.json").exists():
            row = json.loads((folder / "row.json").read_text())
            u = row.get("pnr", {}).get("utilisation")
        elif (folder / "plan.json").exists() and (folder / "top.tim").exists():
            # a build that stopped after packing (no legal placement, routing cut short): its counts are final
            row = json.loads((folder / "plan.json").read_text())
            u = {k: {"used": a} for k, (a, _) in _parse_nextpnr((folder / "top.tim").read_text())[1].items()}
        else:
            continue
        p = row["plan"]
        if not u or "TRELLIS_COMB" not in u:
            continue
        m = _saved_model(row)
        logic = lutram = ff = 0.0
        for layer, lanes, fold in zip(m.layers, p["lanes"], p["cache_folds"]):
            a, b, c = sch.raw_costs(layer, lanes, m.qformat, p["banks"], fold)
            logic, lutram, ff = logic + a, lutram + b, ff + c
        data.append((f"{row['row']} ({row['network']})", logic, lutram, ff, u["TRELLIS_COMB"]["used"], u["TRELLIS_FF"]["used"]))
    if len(data) < 2:
        print(f"--fit needs at least two finished rows under {build_root}", file=sys.stderr)
        return 2
    d = np.array([r[1:] for r in data])
    ram = sch.COMB_PER_LUTRAM * d[:, 1]

    def minimax(model, real, fixed=0.0):
        """The scale with the smallest worst relative error (the +-15% target is on the worst row)."""
        ks = np.arange(0.5, 2.0, 0.001)
        worst = [np.max(np.abs((k * model + fixed - real) / real)) for k in ks]
        return float(ks[int(np.argmin(worst))])

    k_lut, k_ff = minimax(d[:, 0], d[:, 3], ram), minimax(d[:, 2], d[:, 4])
    print(f"fit over {len(d)} rows: LUT_SCALE = {k_lut:.3f}, FF_SCALE = {k_ff:.3f}   "
          f"(in use: {sch.LUT_SCALE}, {sch.FF_SCALE})")
    print(f"{'row':20} {'LUT real':>9} {'fit':>7} {'in use':>7} {'FF real':>8} {'fit':>7} {'in use':>7}")
    for (name, logic, lutram, ff, comb, real_ff) in data:
        ram_ = sch.COMB_PER_LUTRAM * lutram
        print(f"{name:20} {comb:>9} {_err(k_lut * logic + ram_, comb):>7} {_err(sch.LUT_SCALE * logic + ram_, comb):>7} "
              f"{real_ff:>8} {_err(k_ff * ff, real_ff):>7} {_err(sch.FF_SCALE * ff, real_ff):>7}")
    return 0


def mac_limit(p: dict) -> int:
    """The part's MACs per sample at this plan's clock and rate: every MULT18X18D busy every cycle."""
    from nnhdl.hdl.planner import PARTS

    return PARTS[p["board"]].mult18 * p["budget_cycles"]


def table(rows: list[dict]) -> str:
    head = ["row", "network", "board", "kHz", "MHz", "lanes", "MACs", "% limit", "II", "budget", "latency", "MAC eff",
            "MULT18 est/real", "DP16KD est/real", "LUT est/real (err)", "FF est/real (err)", "Fmax", "build s"]
    out = [head]
    for r in rows:
        if "error" in r:
            out.append([r["row"], r["network"], r["board"], str(r["sample_rate"] // 1000), "refused: " + r["error"]]
                       + [""] * (len(head) - 5))
            continue
        p = r["plan"]
        u = r.get("pnr", {}).get("utilisation", {})

        def used(bel):
            return u.get(bel, {}).get("used")

        # nextpnr lists a cell type only when it is used: absent means 0 once a run exists
        m = (used(PNR_CELLS["mult18"]) or 0) if u else None
        d = (used(PNR_CELLS["dp16kd"]) or 0) if u else None
        lut, ff = used(PNR_CELLS["lut"]), used(PNR_CELLS["ff"])
        fmax = r.get("pnr", {}).get("fmax_mhz")
        out.append([r["row"], r["network"], r["board"], str(r["sample_rate"] // 1000), f"{p['clock_mhz']:g}",
                    ",".join(map(str, p["lanes"])), f"{p['macs_per_sample']:,}",
                    f"{100 * p['macs_per_sample'] / mac_limit(p):.0f}%",
                    str(p["initiation_interval"]), str(p["budget_cycles"]),
                    str(p["latency_cycles"]), f"{100 * p['mac_efficiency']:.0f}%",
                    f"{p['mult18']}/{'-' if m is None else m}", f"{p['dp16kd']}/{'-' if d is None else d}",
                    f"{p['lut']}/{lut or '-'} ({_err(p['lut'], lut)})", f"{p['ff']}/{ff or '-'} ({_err(p['ff'], ff)})",
                    "-" if fmax is None else f"{fmax:.1f}", str(r.get("build_seconds", "-"))])
    widths = [max(len(row[i]) for row in out if i < len(row)) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {', '.join(ROWS)}")
    ap.add_argument("--plan-only", action="store_true", help="planner figures only, no yosys/nextpnr")
    ap.add_argument("--build-root", default=str(ROOT / "build" / "bench-hardware"))
    ap.add_argument("--json", default=None, help="JSON output (default BUILD_ROOT/hardware.json)")
    ap.add_argument("--reuse", action="store_true",
                    help="take a row from BUILD_ROOT/ROW/row.json when a finished build there has the same design "
                         "(network, board, rate, clock, lanes, folds, banks) built by today's RTL generators, with today's "
                         "estimates beside it "
                         "(long rows can run in separate invocations, then one --reuse run prints the table)")
    ap.add_argument("--seed", type=int, default=None,
                    help="nextpnr placer seed for every row (default: nextpnr's); recorded in the row. With "
                         "--reuse, only rows placed with this seed are taken; without --seed, a row of any seed is")
    ap.add_argument("--family", default=None, metavar="BOARD",
                    help="instead: the largest fpga_wide-shaped network the planner fits on BOARD at 192 and 48 kHz")
    ap.add_argument("--fit", action="store_true",
                    help="instead: fit the LUT/FF estimate's constants to the finished rows under BUILD_ROOT")
    args = ap.parse_args()
    if args.fit:
        return fit(Path(args.build_root))
    if args.family:
        from nnhdl.hdl.planner import PARTS

        part = PARTS[args.family]
        for rate in (192000, 48000):
            c, f = largest_of_family(args.family, rate)
            if f is None:
                print(f"{args.family} @ {rate} Hz: nothing of the family fits")
                continue
            limit = part.mult18 * f["budget_cycles"]
            print(f"{args.family} @ {rate} Hz: {c} filters per layer, {f['macs_per_sample']:,} MACs/sample, "
                  f"lanes {f['lanes']}, {f['mult18']} MULT18X18D, ~{f['dp16kd']} DP16KD, ~{f['lut']} LUT, "
                  f"II {f['initiation_interval']}/{f['budget_cycles']} at {f['clock_mhz']:g} MHz; "
                  f"{100 * f['macs_per_sample'] / limit:.0f}% of the part's MAC limit "
                  f"({part.mult18} x {f['budget_cycles']} = {limit:,})")
        return 0
    keys = [k for k in args.rows.split(",") if k]
    unknown = [k for k in keys if k not in ROWS]
    if unknown:
        print(f"unknown rows {unknown}; choose from {', '.join(ROWS)}", file=sys.stderr)
        return 2
    root = Path(args.build_root)
    root.mkdir(parents=True, exist_ok=True)
    rows, status = [], Rows()

    def brief(r: dict) -> str:
        p, pnr = r["plan"], r.get("pnr", {})
        fmax = pnr.get("fmax_mhz")
        return (f"{r['network']}: lanes {p['lanes']}, II {p['initiation_interval']}/{p['budget_cycles']}, "
                f"{p['mult18']} MULT18X18D, {p['dp16kd']} DP16KD (est.)"
                + ("" if not pnr else f", Fmax {fmax} MHz, {r['build_seconds']} s"))

    for k in keys:
        print(f"== {k}: {ROWS[k]}", file=sys.stderr, flush=True)
        r = status.run(k, lambda: run_row(k, root, args.plan_only, args.reuse, args.seed), brief)
        rows.append(r if r is not None else {"row": k, "network": ROWS[k][0], "board": ROWS[k][1],
                                             "sample_rate": ROWS[k][2], "error": status.last_error})
    print(table(rows))
    out = Path(args.json or root / "hardware.json")
    out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"written {out}", file=sys.stderr)
    return status.exit_status()


if __name__ == "__main__":
    raise SystemExit(main())
