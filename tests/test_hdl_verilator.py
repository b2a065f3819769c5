"""Whole networks in Verilator: >= 20,000 samples bit-exact against the golden model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from nnhdl.configs import random_model, random_spec
from nnhdl.fixedpoint import QFormat
from nnhdl.reference import evaluate

pytestmark = pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator not installed (apt-get install verilator)")


def _shared_cache(tmp_path_factory) -> str:
    """One simulator cache per test session (shared by xdist workers), so each shape builds once."""
    root = tmp_path_factory.getbasetemp()
    if root.name.startswith("popen-gw"):
        root = root.parent
    return str(root / "nnhdl-verilator-cache")


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("NNHDL_CACHE", _shared_cache(tmp_path_factory))
    yield
    mp.undo()


def _inputs(model, n, seed):
    f = model.qformat
    return np.random.default_rng(seed).integers(f.min_int, f.max_int + 1, (n, model.input_dim))


def _sim(model, lanes=None):
    from nnhdl.sim.verilator import VerilatorSim

    return VerilatorSim(model, lanes=lanes)


@pytest.mark.parametrize("name,lanes", [("fpga_qb", None), ("fpga_po2", None), ("mcu", None)])
def test_reference_networks_20000_samples(name, lanes):
    model = random_model(name, seed=11, extreme=name == "fpga_po2")
    sim = _sim(model, lanes)
    x = _inputs(model, 20_000, 5)
    y = sim.run(x)
    assert np.array_equal(y, evaluate(model, x))
    from nnhdl.hdl.schedule import schedule

    sched = schedule(model, lanes)  # the static prediction the Network is built with
    assert sim.figures["latency_min"] == sim.figures["latency_max"] == sched.latency
    assert sim.figures["ii_min"] == sim.figures["ii_max"] == sched.initiation_interval
    # random valid gaps and ready stalls change nothing; latency only grows
    y = sim.run(x[:3000], stall=0.3, seed=3)
    assert np.array_equal(y, evaluate(model, x[:3000]))
    assert sim.figures["latency_max"] > sched.latency


@pytest.mark.parametrize("seed", range(2))
def test_random_mixed_networks_20000_samples(seed):
    rng = np.random.default_rng(1000 + seed)
    fmt = [QFormat(12, 9), QFormat(18, 12)][seed]
    spec = random_spec(rng, max_layers=3, max_dim=5, max_dilation=9, qformat=fmt)
    model = random_model(spec, seed=seed, extreme=True)
    lanes = [int(rng.integers(1, l.taps + 1)) for l in model.layers]
    sim = _sim(model, lanes)
    x = _inputs(model, 20_000, seed)
    assert np.array_equal(sim.run(x, stall=0.2, seed=seed), evaluate(model, x))
    # back to back, no stalls: 20,000 samples pipelined at exactly the predicted II and latency
    from nnhdl.hdl.schedule import schedule

    sched = schedule(model, lanes)
    assert np.array_equal(sim.run(x), evaluate(model, x))
    assert sim.figures["ii_min"] == sim.figures["ii_max"] == sched.initiation_interval
    assert sim.figures["latency_min"] == sim.figures["latency_max"] == sched.latency


def test_simulator_is_cached_by_shape_and_reloads_weights():
    a = random_model("mcu", seed=1)
    b = random_model("mcu", seed=2, extreme=True)
    sa, sb = _sim(a), _sim(b)
    assert sa.exe == sb.exe  # same shape: one build, weights travel through the write port
    x = _inputs(a, 500, 0)
    assert np.array_equal(sb.run(x), evaluate(b, x))
    assert not np.array_equal(evaluate(a, x), evaluate(b, x))


def test_wide_ports_over_64_bits():
    from nnhdl.configs import LayerSpec, NetworkSpec

    # 5 x 18 = 90-bit input and 6 x 18 = 108-bit output vectors (Verilator "wide" ports)
    spec = NetworkSpec("wide", 5, (LayerSpec(3, 5, 4, "po2", "relu"), LayerSpec(2, 2, 6, "qb", "none")),
                       qformat=QFormat(18, 12), rounding="nearest")
    model = random_model(spec, seed=3, extreme=True)
    sim = _sim(model, [5, 3])
    x = _inputs(model, 20_000, 8)
    assert np.array_equal(sim.run(x), evaluate(model, x))


@pytest.mark.parametrize("fmt", [QFormat(16, 12), QFormat(18, 12), QFormat(20, 14)])
def test_netlist_with_ecp5_dsp_cells_is_bit_exact(fmt):
    """The network as a bitstream gets it: MULT18X18D cells with their own registers (behavioural model).

    yosys ships MULT18X18D only as a black box, so the cell is simulated by
    ``nnhdl.hdl.mult.MULT18X18D_MODEL``; its registers set the lanes' latency, so
    a wrong register setting shows as a wrong answer and a wrong latency here.
    Operands over 18 bits (Q20) fall back to fabric multipliers: no cell at all.
    """
    from amaranth.back import verilog

    from nnhdl.hdl.mult import ECP5_MULT18
    from nnhdl.hdl.network import Network
    from nnhdl.hdl.schedule import schedule
    from nnhdl.sim.verilator import VerilatorSim

    spec = random_spec(np.random.default_rng(7), max_layers=3, max_dim=5, max_dilation=9, kinds=("qb",), qformat=fmt)
    model = random_model(spec, seed=3, extreme=True)
    lanes = [max(1, l.taps // 2) for l in model.layers]
    text = verilog.convert(Network(model, lanes=lanes, multiplier=ECP5_MULT18), name="top", emit_src=False)
    cells = text.count("MULT18X18D #(")
    assert cells == (sum(lanes) if fmt.width <= 18 else 0)
    sim = VerilatorSim(model, lanes=lanes, multiplier=ECP5_MULT18)
    x = _inputs(model, 20_000, 9)
    assert np.array_equal(sim.run(x), evaluate(model, x))
    sched = schedule(model, lanes)
    assert sim.figures["ii_min"] == sim.figures["ii_max"] == sched.initiation_interval
    assert sim.figures["latency_min"] == sim.figures["latency_max"] == sched.latency
    assert np.array_equal(sim.run(x[:3000], stall=0.3, seed=4), evaluate(model, x[:3000]))
