"""nnhdl.explore: the search-space file (first landing)."""

from __future__ import annotations

import pytest

from nnhdl.errors import NnhdlError
from nnhdl.explore.space import network_config, parse_space, point_id

TINY = """
[explore]
strategy = "grid"
[budget]
steps = 5
[model]
layers = [1, 2]
filters = 4
kernel_size = 2
dilation_growth = 2
[hardware]
board = ["ecpix5", "daisy"]
sample_rate = 48000
clock_mhz = [0.0, 100.0]
"""


def test_grid_merges_daisy_clocks():
    space = parse_space(TINY)
    grid = space.grid()
    # 2 layer counts x (ecpix5 at two clocks + daisy at its one clock) = 6 points, by hand
    assert len(grid) == 6
    assert len({point_id(k) for k in grid}) == 6
    assert {k["clock_mhz"] for k in grid if k["board"] == "daisy"} == {480.0}


def test_network_config_shape():
    k = parse_space(TINY).grid()[-1]
    cfg = network_config(k, 4, 1, "p")
    assert [l["dilation"] for l in cfg["layers"]] == [1, 2, 1][: k["layers"]] + [1]
    assert cfg["layers"][-1]["out_dim"] == 1 and cfg["qformat"] == {"width": 16, "frac": 12}


@pytest.mark.parametrize("extra,key", [
    ("[model]\nbogus = 1\n", "model.bogus"),
    ("[budget]\nsteps = 0\n", "budget.steps"),
    ("[model]\npo2 = \"all\"\nqformat = \"Q1.15\"\n", "model.qformat"),
    ("[hardware]\nboard = \"nexys\"\n", "hardware.board"),
    ("[model]\nactivation = \"gelu\"\n", "model.activation"),
])
def test_bad_space_names_the_key(extra, key):
    with pytest.raises(NnhdlError) as e:
        parse_space(extra, "s.toml")
    msg = str(e.value)
    assert msg.startswith(f"s.toml: {key}") and "\n" not in msg


def test_every_registered_activation_is_a_knob():
    """The activation knob offers the ops of nnhdl.ops (tanh included), and a point's network uses it."""
    space = parse_space("[model]\nactivation = [\"relu\", \"tanh\"]\n", "s.toml")
    assert space.choices["activation"] == ("relu", "tanh")
    cfgs = [network_config(k, 4, 1, "p") for k in space.grid()]
    assert sorted(c["layers"][0]["activation"] for c in cfgs) == ["relu", "tanh"]


def test_random_strategy_is_seeded():
    from nnhdl.explore.strategies import random_points

    space = parse_space(TINY)
    a, b = random_points(space, 3, 7), random_points(space, 3, 7)
    assert a == b and len({point_id(k) for k in a}) == 3
    assert any(random_points(space, 3, s) != a for s in range(8, 20))
    assert len(random_points(space, 100, 0)) == 6


from hypothesis import given, strategies as st  # noqa: E402


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=30))
def test_pareto_front_equals_brute_force_dominance(pts):
    from nnhdl.explore.front import pareto_front

    pts = [(float(e), float(c)) for e, c in pts]
    brute = {i for i, p in enumerate(pts)
             if not any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in pts)}
    assert set(pareto_front(pts)) == brute


# -- end to end: the tiny space through both engines, the cache, the CLI's error contract --------------

import csv  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

from nnhdl.cli import main  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "explore_tiny.toml"
#: wall-clock seconds per point: the only engine-dependent figures, kept out of results.csv/.json
TIMING_FILE = "timings.csv"


def _table(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("explore") / "pool"
    assert main(["explore", str(FIXTURE), "--out", str(out), "--workers", "1"]) == 0
    return out


def test_tiny_space_end_to_end(pool_run, capsys):
    rows = _table(pool_run)
    # the fixture: filters 2 or 3, on the ECPIX-5 and the Daisy -> 4 points, sorted by id
    assert len(rows) == 4 and [r["point_id"] for r in rows] == sorted(r["point_id"] for r in rows)
    assert {(r["filters"], r["board"]) for r in rows} == {(f, b) for f in "23" for b in ("ecpix5", "daisy")}
    assert all(r["status"] == "ok" for r in rows)
    for r in rows:
        # one hidden layer K=2 of F filters from 4 inputs, a 1x1 output layer: params by hand
        f = int(r["filters"])
        assert int(r["params"]) == 2 * 4 * f + f + f + 1
        if r["board"] == "daisy":
            assert r["instructions_source"] == "emulated" and float(r["instructions"]) > 0
            assert r["mult18"] == ""
        else:
            assert r["mult18_source"] == r["lut_source"] == "estimated" and int(r["mult18"]) >= 1
            assert r["instructions"] == ""
    js = json.loads((pool_run / "results.json").read_text())
    assert [p["point_id"] for p in js["points"]] == [r["point_id"] for r in rows]
    assert (pool_run / TIMING_FILE).is_file() and not (pool_run / "work").exists()
    # 4 points + 3 bundled models for each of the 2 boards at 48 kHz
    assert len(list((pool_run / "cache").glob("*.json"))) == 4 + 3 * 2
    for png in ("pareto_mult18.png", "pareto_lut.png", "pareto_dp16kd.png", "pareto_instructions.png"):
        assert (pool_run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (pool_run / "report.md").read_text()
    for board in ("ecpix5", "daisy"):
        assert f"## {board} 48 kHz" in report
        section = report.split(f"## {board} 48 kHz")[1].split("## ")[0]
        pid = section.split("**Recommended: `")[1].split("`")[0]
        # no point of 3 training steps meets the goal: the lowest error of the board's points is recommended
        mine = [r for r in rows if r["board"] == board]
        assert pid == min(mine, key=lambda r: float(r["nmse_corner_mean"]))["point_id"]
        cfg = json.loads((pool_run / "points" / f"{pid}.json").read_text())
        assert cfg["layers"][0]["out_dim"] == int(next(r for r in mine if r["point_id"] == pid)["filters"])
        assert f"--config points/{pid}.json --steps 3 --batch 4" in section


def test_dask_local_cluster_gives_the_same_table(pool_run, tmp_path, capsys):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        assert main(["explore", str(FIXTURE), "--out", str(tmp_path / "dask"), "--dask", c.scheduler_address,
                     "--no-references"]) == 0
    assert _table(tmp_path / "dask") == _table(pool_run)
    assert (tmp_path / "dask" / "results.json").read_text() == (pool_run / "results.json").read_text()


def test_rerun_skips_cached_points_and_recomputes_a_corrupted_one(pool_run, tmp_path, capsys):
    out = tmp_path / "again"
    shutil.copytree(pool_run, out)
    text, _ = _rerun(out, capsys)
    assert "0 computed, 4 from the cache" in text and _table(out) == _table(pool_run)
    victim = [p for p in sorted((out / "cache").glob("*.json")) if '"reference"' not in p.read_text()][1]
    victim.write_text(victim.read_text().replace("ok", "OK", 1))  # still JSON, wrong checksum
    text, err = _rerun(out, capsys)
    assert "1 computed, 3 from the cache" in text
    assert sum("corrupted" in line for line in err.splitlines()) == 1 and str(victim) in err
    assert _table(out) == _table(pool_run)


def _rerun(out: Path, capsys) -> tuple[str, str]:
    capsys.readouterr()
    assert main(["explore", str(FIXTURE), "--out", str(out), "--workers", "1"]) == 0
    c = capsys.readouterr()
    return c.out, c.err


@pytest.mark.parametrize("text,key", [
    ("[model]\nfilters = 4\nbogus = 1\n", "model.bogus"),
    ("[model]\nkernel_size = 0\n", "model.kernel_size"),
    ("[model]\npo2 = \"first\"\nqformat = \"Q12.0\"\n", "model.qformat"),
])
def test_bad_space_file_exit_2_and_no_out(text, key, tmp_path, capsys):
    space = tmp_path / "bad.toml"
    space.write_text(text)
    out = tmp_path / "out"
    assert main(["explore", str(space), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{space}: {key}" in err
    assert not out.exists()


# -- strategies without training: a made-up, deterministic evaluator ------------------------------------

GA_SPACE = """
[explore]
strategy = "ga"
seed = 1
[model]
layers = [1, 2, 3]
filters = [2, 4, 8, 16]
kernel_size = [2, 3, 4]
activation = ["relu", "none"]
[hardware]
board = ["ecpix5", "daisy"]
sample_rate = 48000
[ga]
population = 6
generations = 4
elite = 2
mutation = 0.3
lambdas = [0.0, 1.0]
"""


def _fake_rows(points):
    """Loss falls with size, cost grows with it; a point with activation "none" is made infeasible."""
    rows = []
    for k in points:
        size = k["layers"] * k["filters"] * k["kernel_size"]
        ok = k["activation"] == "relu"
        rows.append({"status": "ok" if ok else "infeasible", "nmse_corner_mean": 1.0 / size,
                     "cost_percent": float(size)})
    return rows


def test_ga_is_reproducible_for_a_seed_and_keeps_its_elite():
    from nnhdl.explore.strategies import fitness, genetic

    space = parse_space(GA_SPACE)
    calls = []

    def evaluate(points):
        calls.append(len(points))
        assert len({point_id(k) for k in points}) == len(points)  # one evaluation per distinct point and batch
        return _fake_rows(points)

    visited, history = genetic(space, evaluate, seed=1)
    again = genetic(space, _fake_rows, seed=1)
    assert (visited, history) == again
    other = genetic(space, _fake_rows, seed=2)
    assert set(other[0]) != set(visited)
    assert len(calls) == space.ga.generations  # one batch per generation, all populations together
    # 2 hardware combinations x 2 lambdas, one line per population and generation
    assert len(history) == 2 * 2 * space.ga.generations
    for board in ("ecpix5", "daisy"):
        for lam in (0.0, 1.0):
            best = [h["best_fitness"] for h in history if h["board"] == board and h["lambda"] == lam]
            assert best == sorted(best)  # elitism: the best never gets worse
    # hardware knobs are not genes: every visited point keeps one of the space's combinations
    assert {(k["board"], k["clock_mhz"]) for k in visited.values()} <= {("ecpix5", 0.0), ("daisy", 480.0)}
    rows = dict(zip(visited, _fake_rows(list(visited.values()))))
    for h in history:  # the reported best is the best of what was visited, by the fitness formula
        assert h["best_fitness"] == fitness(rows[h["best_point_id"]], h["lambda"])
    assert fitness({"status": "ok", "nmse_corner_mean": 0.25, "cost_percent": 3.0}, 0.5) == 4.0 - 1.5


def test_random_points_do_not_enumerate_a_huge_grid():
    from nnhdl.explore.strategies import random_points

    big = parse_space("[model]\nfilters = [%s]\nlayers = [%s]\nkernel_size = [2, 3, 4, 5]\n"
                      "dilation_growth = [1, 2]\n[hardware]\nsample_rate = [%s]\nclock_mhz = [%s]\n"
                      % (", ".join(map(str, range(1, 257))), ", ".join(map(str, range(1, 9))),
                         ", ".join(str(48000 + n) for n in range(200)), ", ".join(f"{50 + n}.0" for n in range(100))))
    assert big.size() > 100_000_000  # enumerating it would take minutes and gigabytes
    pts = random_points(big, 50, 3)
    assert len({point_id(k) for k in pts}) == 50 and pts == random_points(big, 50, 3)


def test_example_spaces_are_valid():
    from nnhdl.explore.space import load_space
    from nnhdl.explore.strategies import grid

    root = Path(__file__).resolve().parents[1] / "examples" / "explore"
    sizes = {p.stem: (load_space(p).strategy, len(list(grid(load_space(p))))) for p in root.glob("*.toml")}
    # the committed grids are the 24-point sweeps of issue 11 (by their choices: 2x3x2x2 and 3x2x2x2); the
    # Colorlight space: 6 filters x 3 kernels x 2 growths x 3 po2 x 2 objectives x 2 layers x 2 rates
    assert sizes == {"ecpix5_192k": ("grid", 24), "daisy_48k": ("grid", 24), "colorlight_i5_192k": ("ga", 864)}


def test_committed_points_keep_their_ids_with_the_objective_knob():
    """A knob added later (the planner objective) leaves the ids of points at its default as they were: every
    committed row's id is the hash of its knobs with objective = "throughput", and another objective is
    another point."""
    import json

    from nnhdl.explore.space import HARDWARE_KNOBS, MODEL_KNOBS

    root = Path(__file__).resolve().parents[1] / "examples" / "explore" / "results"
    for sweep in ("ecpix5_192k", "daisy_48k"):
        rows = json.loads((root / sweep / "results.json").read_text())["points"]
        assert len(rows) >= 24
        for r in rows:
            knobs = {n: r[n] for n in list(MODEL_KNOBS) + list(HARDWARE_KNOBS) if n != "objective"}
            assert point_id({**knobs, "objective": "throughput"}) == r["point_id"], (sweep, r["point_id"])
            assert point_id({**knobs, "objective": "latency"}) != r["point_id"]


def test_latency_objective_plans_the_whole_latency_into_one_period():
    """The objective knob reaches the planner: "latency" plans latency <= budget (more multipliers),
    "throughput" only the initiation interval."""
    from nnhdl.configs import random_model
    from nnhdl.explore.evaluate import _cost_fpga

    model = random_model("fpga_qb", seed=0)
    rows = {}
    for objective in ("throughput", "latency"):
        row: dict = {}
        _cost_fpga(model, {"board": "ecpix5", "sample_rate": 192000, "clock_mhz": 0.0, "objective": objective},
                   row, {})
        rows[objective] = row
    budget = 125_000_000 // 192000  # whole cycles per sample at the ECPIX-5's default 125 MHz
    assert rows["latency"]["clock_mhz_planned"] == rows["throughput"]["clock_mhz_planned"] == 125.0
    assert rows["latency"]["latency_cycles"] <= budget < rows["throughput"]["latency_cycles"]
    assert rows["throughput"]["initiation_interval"] <= budget
    assert rows["latency"]["mult18"] > rows["throughput"]["mult18"]


def test_pnr_front_places_and_routes_the_best_fpga_point(pool_run, tmp_path, capsys):
    """One real yosys + nextpnr run (~20 s): the ECPIX-5 point with the lowest error gets nextpnr's counts."""
    out = tmp_path / "pnr"
    shutil.copytree(pool_run, out)
    assert main(["explore", str(FIXTURE), "--out", str(out), "--workers", "1", "--pnr-front", "1"]) == 0
    assert "0 computed, 4 from the cache; 1 placed and routed" in capsys.readouterr().out
    rows = _table(out)
    fpga = [r for r in rows if r["board"] == "ecpix5"]
    placed = [r for r in fpga if r["mult18_source"] == "placed_and_routed"]
    assert [r["point_id"] for r in placed] == [min(fpga, key=lambda r: float(r["nmse_corner_mean"]))["point_id"]]
    r = placed[0]
    assert r["lut_source"] == r["fmax_mhz_source"] == "placed_and_routed" and float(r["fmax_mhz"]) > 0
    # the planner's multiplier count is exact (README, benchmarks/hardware.py): nextpnr agrees
    assert r["mult18"] == r["mult18_estimated"] and int(r["lut"]) > 0
    assert all(q["mult18_source"] == "estimated" and q["fmax_mhz"] == "" for q in fpga if q is not r)


def test_ga_strategy_through_the_cli(tmp_path, capsys):
    """The GA end to end with real training: 2 filter choices, populations of 2 for one lambda, 2 generations."""
    space = tmp_path / "ga.toml"
    space.write_text(FIXTURE.read_text().replace('strategy = "grid"', 'strategy = "ga"\nseed = 5')
                     .replace('board = ["ecpix5", "daisy"]', 'board = "daisy"')
                     + "\n[ga]\npopulation = 2\ngenerations = 2\nelite = 1\nlambdas = [0.0]\n")
    out = tmp_path / "out"
    assert main(["explore", str(space), "--out", str(out), "--workers", "1", "--no-references"]) == 0
    rows = _table(out)
    # the population of 2 distinct points covers both filter choices: 2 points, nothing new to breed
    assert sorted(r["filters"] for r in rows) == ["2", "3"] and all(r["board"] == "daisy" for r in rows)
    with open(out / "ga_history.csv", newline="") as f:
        history = list(csv.DictReader(f))
    assert [h["generation"] for h in history] == ["0", "1"]
    best = min(rows, key=lambda r: float(r["nmse_corner_mean"]))  # lambda 0: the fitness is 1 / NMSE
    assert {h["best_point_id"] for h in history} == {best["point_id"]}


def test_cache_entry_checks_its_model_file(tmp_path):
    from nnhdl.explore.cache import Cache

    said = []
    cache = Cache(tmp_path / "cache", said.append)
    cache.put("k", {"row": {"status": "ok", "x": 1.5}}, b"model bytes")
    assert cache.get("k")["row"] == {"status": "ok", "x": 1.5} and cache.blob("k") == b"model bytes"
    assert not list((tmp_path / "cache").glob("*.partial")) and said == []
    (tmp_path / "cache" / "k.npz").write_bytes(b"model bytez")  # the entry names another model file
    assert cache.get("k") is None and len(said) == 1 and "corrupted" in said[0]
    assert not (tmp_path / "cache" / "k.json").exists() and cache.get("k") is None and len(said) == 1


def test_unreachable_dask_scheduler_is_one_line_and_no_out(tmp_path, capsys, monkeypatch):
    pytest.importorskip("dask.distributed")
    import socket

    from nnhdl.explore import runner

    monkeypatch.setattr(runner, "CONNECT_TIMEOUT", 2)
    with socket.socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
        out = tmp_path / "out"
        assert main(["explore", str(FIXTURE), "--out", str(out), "--dask", address]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--dask {address}: cannot reach the scheduler" in err[0]
    assert not out.exists()


def hold_a_core(arg: dict) -> dict:
    """A stand-in task for the resource test: how long it ran, by the wall clock."""
    import time

    start = time.monotonic()
    time.sleep(arg["seconds"])
    return {"start": start, "end": time.monotonic()}


@pytest.mark.parametrize("cores, overlap", [(1, False), (None, True)])
def test_dask_tasks_hold_one_core_each(cores, overlap, capsys):
    """On a worker with two threads but one declared core, two tasks never run at once (a P&R run does not
    share its core); without the resource both threads run (the control, so the test can fail)."""
    distributed = pytest.importorskip("dask.distributed")
    from nnhdl.explore.runner import CORES, Engine

    resources = {CORES: cores} if cores else None
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, resources=resources,
                                  dashboard_address=None) as cluster, Engine(dask=cluster.scheduler_address) as e:
        assert e.parallel() == (1 if cores else 2)
        runs = sorted((r["start"], r["end"]) for _, r in
                      e.submit_all([(f"{__name__}:hold_a_core", {"seconds": 1.0})] * 2))
    assert (runs[1][0] < runs[0][1]) == overlap
    assert ("--resources cores=N" in capsys.readouterr().err) == (not cores)
