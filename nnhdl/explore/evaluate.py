"""One point of a sweep: train the network it describes, score it, cost it on its board.

A point is a plain dict of knobs (:data:`~.space.MODEL_KNOBS` and
:data:`~.space.HARDWARE_KNOBS`); its result is a flat dict of named figures
(one row of ``results.csv``), computed in a worker process: the function
takes and returns only picklable built-in values, so the process pool and a
Dask worker run exactly the same code.  Wall-clock times go into a separate
``seconds`` dict, because they are the one thing that depends on the engine.

Every cost figure ``f`` has a sibling column ``f_source``: ``estimated``
(the folding planner's cost model), ``emulated`` (QEMU instruction counts
of the emitted C), ``synthesised`` or ``placed_and_routed`` (yosys, nextpnr).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["evaluate_point", "scoring_length", "place_and_route_point", "evaluate_reference", "REFERENCE_MODELS", "FPGA_FIGURES", "DAISY_FIGURES", "QEMU_SAMPLES", "single_thread_env"]

#: planner figures of an FPGA point (all from the cost model: source ``estimated``)
FPGA_FIGURES = ("mult18", "dp16kd", "lut", "ff", "initiation_interval", "latency_cycles", "mac_efficiency")
#: MCU figures of a Daisy point: QEMU's instruction count (``emulated``) and the linker's sizes
DAISY_FIGURES = ("instructions", "flash_bytes", "ram_bytes")
#: samples the Cortex-M7 build runs under QEMU per Daisy point (0.45 s for a tiny model)
QEMU_SAMPLES = 200


def single_thread_env() -> None:
    """One compute thread per worker: the engine gives each point one core, and XLA's reductions then do not
    depend on how many threads a machine has (so results do not depend on where a point ran)."""
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


def scoring_length(budget: dict[str, Any], receptive_field: int) -> int:
    """Samples per held-out window: the budget's, unless the receptive field would eat more than half of it
    (the score counts only samples after it fills); then the receptive field plus the budget's length."""
    n = budget["score_length"]
    return n if 2 * receptive_field <= n else receptive_field + n


def evaluate_point(task: dict[str, Any]) -> dict[str, Any]:
    """Evaluate one point; ``task`` = {knobs, budget, input_dim, output_dim, work}.

    Returns ``{"row": {...}, "seconds": {...}}``.  A network the planner cannot
    fit at the point's rate, or whose training fails (a NaN loss), is a
    recorded point with ``status`` ``infeasible`` / ``failed`` and the reason,
    not an exception.
    """
    single_thread_env()
    from ..errors import NnhdlError

    knobs, budget = task["knobs"], task["budget"]
    row: dict[str, Any] = {"status": "ok", "reason": ""}
    seconds = {"train": 0.0, "score": 0.0, "plan": 0.0, "mcu": 0.0}
    work = Path(task["work"])
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="point-", dir=work) as tmp:
        try:
            model = _train(knobs, budget, task["input_dim"], task["output_dim"], Path(tmp), row, seconds)
        except NnhdlError as e:
            row.update(status="failed", reason=" ".join(str(e).split()))
            return {"row": row, "seconds": seconds}
        model.save(Path(tmp) / "model.npz")
        model_npz = (Path(tmp) / "model.npz").read_bytes()  # the client keeps it beside the cache entry
        row["params"] = model.params
        row["macs_per_sample"] = model.macs_per_sample
        row["receptive_field"] = model.receptive_field
        t = time.perf_counter()
        from training.evaluate import score

        s = score(model, per_point=budget["score_per_point"], length=scoring_length(budget, model.receptive_field),
                  float_model=False, interior=())
        seconds["score"] = time.perf_counter() - t
        # corners: the four waves; edges: the morph between adjacent corners (DESIGN section 5)
        row["nmse_corner_mean"], row["nmse_corner_worst"] = s.summary("corner")
        row["nmse_morph_mean"], row["nmse_morph_worst"] = s.summary("edge")
        if knobs["board"] == "daisy":
            try:
                _cost_daisy(model, Path(tmp), row, seconds)
            except NnhdlError as e:  # a build or check failure is not a property of the design
                row.update(status="failed", reason=" ".join(str(e).split()))
        else:
            try:
                _cost_fpga(model, knobs, row, seconds)
            except NnhdlError as e:
                row.update(status="infeasible", reason=" ".join(str(e).split()))
    return {"row": row, "seconds": seconds, "model_npz": model_npz}


def _train(knobs: dict[str, Any], budget: dict[str, Any], input_dim: int, output_dim: int, tmp: Path,
           row: dict[str, Any], seconds: dict[str, float]):
    """Quantisation-aware training with the sweep's fixed budget (the same steps for every point)."""
    from training.train import TrainConfig, Trainer

    from .space import network_config

    config = tmp / "network.json"
    config.write_text(json.dumps(network_config(knobs, input_dim, output_dim, "explore")))
    t = time.perf_counter()
    cfg = TrainConfig(str(config), steps=budget["steps"], batch=budget["batch"], lr=budget["lr"],
                      seed=budget["seed"], sample_rate=knobs["sample_rate"])
    trainer = Trainer(cfg)
    import numpy as np

    from ..errors import NnhdlError

    loss = float("nan")
    while trainer.step < cfg.steps:
        loss = trainer.train_step()
        if not np.isfinite(loss):
            raise NnhdlError(f"training loss became {loss} at step {trainer.step}")
    model = trainer.export({"steps": trainer.step})
    seconds["train"] = time.perf_counter() - t
    row["train_loss"] = loss
    row["validation_loss"] = model.meta["final_loss"]["quantised"]
    return model


def _cost_fpga(model, knobs: dict[str, Any], row: dict[str, Any], seconds: dict[str, float]) -> None:
    """The folding planner's cheapest plan meeting the point's sample rate (NnhdlError: infeasible)."""
    from ..hdl.planner import plan

    t = time.perf_counter()
    try:
        p = plan(model, knobs["board"], sample_rate=knobs["sample_rate"], clock_mhz=knobs["clock_mhz"] or None,
                 latency_in_period=knobs.get("objective") == "latency")
    finally:
        seconds["plan"] = time.perf_counter() - t
    j = p.to_json()
    row["clock_mhz_planned"] = p.clock_mhz
    row["lanes"] = ",".join(str(v) for v in p.lanes)
    for f in FPGA_FIGURES:
        row[f] = j[f]
        row[f"{f}_source"] = "estimated"
    part = p.part
    # the binding resource's share of the part, in percent: what the GA's fitness charges
    row["cost_percent"] = round(100 * max(j["mult18"] / part.mult18, j["dp16kd"] / part.dp16kd,
                                          j["lut"] / part.lut, j["ff"] / part.lut), 3)


def _cost_daisy(model, tmp: Path, row: dict[str, Any], seconds: dict[str, float],
                sample_rate: int | None = None) -> None:
    """The q15 C build for the Cortex-M7, run under QEMU: instructions per inference, flash and RAM."""
    from mcu.check import check
    from mcu.plan import DAISY_SEED_FLASH, DAISY_SEED_RAM

    from .space import DAISY_CLOCK_MHZ

    t = time.perf_counter()
    try:
        rep = check(model, "q412", host=False, qemu_samples=QEMU_SAMPLES, workdir=tmp / "mcu", say=lambda _s: None)
    finally:
        seconds["mcu"] = time.perf_counter() - t
    row["instructions"] = round(float(rep.instructions), 1)
    row["instructions_source"] = "emulated"
    row["flash_bytes"], row["flash_bytes_source"] = rep.model_flash, "compiled"
    row["ram_bytes"], row["ram_bytes_source"] = rep.model_ram, "compiled"
    budget = DAISY_CLOCK_MHZ * 1e6 / (sample_rate or model.sample_rate)
    # instructions per sample against the core's cycles per sample (one instruction ~ one cycle)
    row["cost_percent"] = round(100 * rep.instructions / budget, 3)
    if rep.instructions > budget:
        row.update(status="infeasible", reason=f"{rep.instructions:,.0f} instructions per inference exceed the "
                   f"{budget:,.0f} cycles per sample of the {DAISY_CLOCK_MHZ:g} MHz core")
    elif rep.model_flash > DAISY_SEED_FLASH or rep.model_ram > DAISY_SEED_RAM:
        row.update(status="infeasible", reason=f"the model needs {rep.model_flash:,} bytes flash and "
                   f"{rep.model_ram:,} bytes RAM; the Daisy Seed has {DAISY_SEED_FLASH:,} and {DAISY_SEED_RAM:,}")


#: the bundled reference models (DESIGN section 4), marked on the pictures for comparison
REFERENCE_MODELS = ("fpga_qb", "fpga_po2", "mcu")


def evaluate_reference(name: str, hardware: dict[str, Any], budget: dict[str, Any], work: str) -> dict[str, Any]:
    """A bundled model scored the way every point is (same held-out windows), costed on ``hardware``.

    It keeps its own sample rate for scoring (it was trained for it) and is
    costed at the point's rate, as if that board ran it.
    """
    from ..errors import NnhdlError
    from ..model import Model

    model = Model.load(Path(__file__).resolve().parents[1] / "models" / f"{name}.npz")
    row: dict[str, Any] = {"reference": name, **hardware, "status": "ok", "reason": "", "params": model.params,
                           "macs_per_sample": model.macs_per_sample}
    seconds: dict[str, float] = {"train": 0.0, "score": 0.0, "plan": 0.0, "mcu": 0.0}
    from training.evaluate import score

    s = score(model, per_point=budget["score_per_point"], length=scoring_length(budget, model.receptive_field),
              float_model=False, interior=())
    row["nmse_corner_mean"], row["nmse_corner_worst"] = s.summary("corner")
    row["nmse_morph_mean"], row["nmse_morph_worst"] = s.summary("edge")
    Path(work).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"ref-{name}-", dir=work) as tmp:
        try:
            if hardware["board"] == "daisy":
                _cost_daisy(model, Path(tmp), row, seconds, hardware["sample_rate"])
            else:
                _cost_fpga(model, hardware, row, seconds)
        except NnhdlError as e:
            row.update(status="infeasible", reason=" ".join(str(e).split()))
    return row


def place_and_route_point(task: dict[str, Any]) -> dict[str, Any]:
    """yosys + nextpnr on one trained point (``task``: model_npz bytes, board, lanes, clock_mhz, work):
    nextpnr's cell counts and Fmax, or ``{"error": ...}`` when the tools fail."""
    single_thread_env()
    from ..errors import NnhdlError
    from ..model import Model
    from ..synth import place_and_route

    work = Path(task["work"])
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pnr-", dir=work) as tmp:
        (Path(tmp) / "model.npz").write_bytes(task["model_npz"])
        model = Model.load(Path(tmp) / "model.npz")
        try:
            r = place_and_route(model, task["lanes"], Path(tmp) / "build", board=task["board"],
                                clock_mhz=task["clock_mhz"])
        except NnhdlError as e:
            return {"error": " ".join(str(e).split())[:500], "seconds": time.perf_counter() - t}
    used = {k: u for k, (u, _a) in r.utilisation.items()}
    return {"fmax_mhz": r.fmax_mhz, "used": used, "seconds": time.perf_counter() - t}
