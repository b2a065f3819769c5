"""Whole networks in amaranth.sim: bit-exact vs the golden model, stalls, reset, weight writes, schedule,
layer pipelining (initiation interval and latency) and coherent bank swaps under pipelining."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from nnhdl.configs import REFERENCE, LayerSpec, NetworkSpec, random_model, random_spec
from nnhdl.errors import NnhdlError
from nnhdl.fixedpoint import QFormat
from nnhdl.hdl.network import Network
from nnhdl.reference import evaluate
from nnhdl.hdl.schedule import schedule
from nnhdl.reference import StreamingModel
from nnhdl.sim.pysim import measure_latency, measure_pipeline, stream_through

ODD_FORMATS = [QFormat(16, 12), QFormat(12, 9), QFormat(18, 12), QFormat(10, 4), QFormat(24, 20)]
#: layer 0 on 5 lanes: 640 steps of three weight columns, a skewed weight store (and a folded cache)
SKEWED = NetworkSpec("skewed", 12, (LayerSpec(4, 40, 64, "qb", "relu"), LayerSpec(1, 1, 3, "po2", "relu"),
                                    LayerSpec(2, 1, 2, "qb", "none")))
#: an odd Q format and a po2 layer on 9 lanes: 5-bit codes four to a column, skewed with two banks
PO2_SKEWED = NetworkSpec("po2skew", 9, (LayerSpec(2, 1, 150, "po2", "relu"), LayerSpec(3, 2, 5, "qb", "none")),
                         qformat=QFormat(10, 4), rounding="nearest")


def _inputs(model, n, seed):
    rng = np.random.default_rng(seed)
    f = model.qformat
    return rng.integers(f.min_int, f.max_int + 1, (n, model.input_dim))


@pytest.mark.parametrize("name,lanes", [("fpga_qb", None), ("fpga_po2", 8), ("mcu", None)])
def test_reference_networks_200_samples_with_stalls(name, lanes):
    model = random_model(name, seed=3)
    x = _inputs(model, 200, 1)
    res = stream_through(Network(model, lanes=lanes), x, stall=0.1, seed=2)
    assert np.array_equal(res.output, evaluate(model, x))


def _random_model(seed):
    rng = np.random.default_rng(seed)
    fmt = ODD_FORMATS[seed % len(ODD_FORMATS)]
    spec = random_spec(rng, max_layers=3, max_dim=6, max_dilation=7, qformat=fmt)
    return random_model(spec, seed=seed, extreme=seed % 3 == 0), rng


@pytest.mark.parametrize("seed", range(6))
def test_random_networks_bit_exact(seed):
    model, rng = _random_model(seed)
    lanes = [int(rng.integers(1, l.taps + 1)) for l in model.layers]
    x = _inputs(model, 200, seed)
    res = stream_through(Network(model, lanes=lanes), x, stall=0.3, seed=seed)
    assert np.array_equal(res.output, evaluate(model, x))


@pytest.mark.parametrize("seed", range(4))
def test_predicted_cycles_equal_simulated(seed):
    model, rng = _random_model(100 + seed)
    lanes = int(rng.integers(1, 6))
    net = Network(model, lanes=lanes)
    lat = measure_latency(net, _inputs(model, 4, seed))
    assert lat == [net.latency] * 4


def test_predicted_cycles_reference():
    model = random_model("fpga_qb", seed=0)
    for lanes in (None, 4):
        net = Network(model, lanes=lanes)
        assert measure_latency(net, _inputs(model, 2, 0)) == [net.latency] * 2


def test_reset_mid_stream_restores_zero_history():
    model = random_model("fpga_po2", seed=5)
    x = _inputs(model, 50, 4)
    r = 27
    res = stream_through(Network(model), x, stall=0.2, seed=1, reset_after=r)
    want = np.concatenate([evaluate(model, x[:r]), evaluate(model, x[r:])])
    assert np.array_equal(res.output, want)
    # and the reset really mattered: without it the outputs differ
    assert not np.array_equal(want, evaluate(model, x))


def test_weight_image_matches_address_map():
    model = random_model("fpga_po2", seed=1)
    image = model.weight_image()
    blocks = model.weight_address_map()
    assert blocks[-1][2] + blocks[-1][3] == len(image) == model.params
    for layer, kind, base, length in blocks:
        arr = model.layers[layer].weight if kind == "weight" else model.layers[layer].bias
        assert np.array_equal(image[base:base + length], arr.ravel())


def _write_image(dut, image, *, then_swap=False):
    async def setup(ctx, _dut):
        for a, v in enumerate(image):
            ctx.set(dut.weight_write.addr, a)
            ctx.set(dut.weight_write.data, int(v))
            ctx.set(dut.weight_write.en, 1)
            await ctx.tick()
        ctx.set(dut.weight_write.en, 0)
        await ctx.tick().repeat(dut.weight_write_latency)  # the write pipeline drains
        if then_swap:
            ctx.set(dut.bank_swap, 1)
            await ctx.tick()
            ctx.set(dut.bank_swap, 0)
    return setup


@pytest.mark.parametrize("name,lanes", [("fpga_po2", 3), ("mcu", None), (SKEWED, [5, 1, 1])])
def test_runtime_weight_write_single_bank(name, lanes):
    built = random_model(name, seed=1)
    loaded = random_model(name, seed=2, extreme=True)
    dut = Network(built, lanes=lanes)
    x = _inputs(built, 30, 9)
    res = stream_through(dut, x, setup=_write_image(dut, loaded.weight_image()))
    assert np.array_equal(res.output, evaluate(loaded, x))


def _pipelined_case(seed):
    """A random network (mixed qb/po2, K 1..4, odd dims and Q formats) with random lanes."""
    rng = np.random.default_rng(1000 + seed)
    fmt = ODD_FORMATS[seed % len(ODD_FORMATS)]
    spec = random_spec(rng, max_layers=4, max_dim=7, max_dilation=5, qformat=fmt)
    model = random_model(spec, seed=seed, extreme=seed % 2 == 0)
    return model, [int(rng.integers(1, l.taps + 1)) for l in model.layers]


@pytest.mark.parametrize("seed", range(8))
def test_pipelined_interval_and_latency_equal_schedule(seed):
    """Inputs offered back to back: one taken every predicted II, each output exactly `latency` later, bit-exact."""
    model, lanes = _pipelined_case(seed)
    sched = schedule(model, lanes)
    # from the layer shapes, not from the code under test: the II is the slowest stage's period
    beats = [l.out_dim * -(-l.taps // n) for l, n in zip(model.layers, lanes)]
    assert sched.initiation_interval == max(max(b + 2, 2 if l.kernel_size == 1 else l.kernel_size + 3)
                                            for b, l in zip(beats, model.layers))
    net = Network(model, lanes=lanes)
    x = _inputs(model, 12, seed)
    res = measure_pipeline(net, x)
    assert np.array_equal(res.output, evaluate(model, x))
    assert res.intervals == [sched.initiation_interval] * (len(x) - 1)
    assert res.latencies == [sched.latency] * len(x)
    # several samples really are in flight at once whenever the stages allow it
    if len(model.layers) > 1 and sched.latency > sched.initiation_interval:
        assert res.emitted[0] > res.accepted[1]


@pytest.mark.parametrize("name,lanes,banks", [(SKEWED, [5, 1, 1], 1), (PO2_SKEWED, [9, 4], 2)])
def test_packed_layouts_bit_exact_with_exact_timing(name, lanes, banks):
    """Skewed weight stores and folded caches: bit-exact, one sample every II, each exactly `latency` later."""
    from nnhdl.hdl.store import store_layout
    from nnhdl.hdl.schedule import weight_bits

    model = random_model(name, seed=5, extreme=True)
    l0 = model.layers[0]
    # the layouts under test really are the packed ones
    assert store_layout(lanes[0], weight_bits(l0, model.qformat), l0.out_dim * -(-l0.taps // lanes[0]) * banks).skewed
    net = Network(model, lanes=lanes, banks=banks)
    assert max(net.folds) > 1
    x = _inputs(model, 8, 4)
    res = measure_pipeline(net, x)
    assert np.array_equal(res.output, evaluate(model, x))
    assert res.intervals == [net.initiation_interval] * (len(x) - 1)
    assert res.latencies == [net.latency] * len(x)


def test_pipelining_beats_one_sample_in_flight():
    """fpga_qb with default lanes: the slowest layer sets the pace, not the sum of the layers."""
    model = random_model("fpga_qb", seed=0)
    net = Network(model)
    assert net.initiation_interval < net.latency
    res = measure_pipeline(net, _inputs(model, 5, 0))
    assert res.accepted[-1] - res.accepted[0] == 4 * net.initiation_interval
    assert res.latencies == [net.latency] * 5


def _golden_switched(a, b, x, k):
    """Outputs when samples < k use A's weights and samples >= k use B's, with one history."""
    ref = StreamingModel(a)
    first = ref.run(x[:k]) if k else np.zeros((0, a.output_dim), dtype=np.int64)
    ref._weights = [l.weight.reshape(l.taps, l.out_dim) for l in b.layers]
    ref.model = b
    rest = ref.run(x[k:]) if k < len(x) else np.zeros((0, a.output_dim), dtype=np.int64)
    return np.concatenate([first, rest])


@pytest.mark.parametrize("name,lanes,swap_cycle", [("fpga_po2", 4, 0), ("fpga_qb", [8, 16, 16], 1),
                                                   ("mcu", None, 2), (SKEWED, [5, 1, 1], 1),
                                                   (PO2_SKEWED, [9, 4], 0)])
def test_bank_swap_under_pipelining_is_coherent(name, lanes, swap_cycle):
    """Stream through a swap with several samples in flight: each output is all-old or all-new weights.

    B is written into the inactive bank first; the swap pulse lands at a cycle
    where samples sit in different layers.  The first sample admitted after the
    pulse, and every later one, must equal the golden model with B's weights;
    every earlier one A's -- a sample that mixed the two would match neither.
    """
    a = random_model(name, seed=1)
    b = random_model(name, seed=7, extreme=True)
    dut = Network(a, lanes=lanes, banks=2)
    x = _inputs(a, 12, 3)
    image = b.weight_image()
    ii, lat = dut.initiation_interval, dut.latency
    out, admitted, swapped = [], [], []

    async def tb(ctx):
        await _write_image(dut, image)(ctx, dut)
        ctx.set(dut.o.ready, 1)
        cycle, t = 0, 0
        # the swap pulse goes out while the 5th sample is in the middle of the pipeline
        swap_at = None
        while len(out) < len(x):
            if t < len(x):
                for j, v in enumerate(x[t]):
                    ctx.set(dut.i.payload[j], int(v))
            ctx.set(dut.i.valid, int(t < len(x)))
            pulse = swap_at is not None and cycle == swap_at
            ctx.set(dut.bank_swap, int(pulse))
            _, _, i_ready, o_valid, payload = await ctx.tick().sample(dut.i.ready, dut.o.valid, dut.o.payload)
            if pulse:
                swapped.append((t + int(t < len(x) and bool(i_ready)), cycle))  # a handshake now still used A
            if t < len(x) and i_ready:
                admitted.append(cycle)
                t += 1
                if t == 5 and swap_at is None:
                    swap_at = cycle + swap_cycle + ii // 2
            if o_valid:
                out.append([int(v) for v in payload])
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    out = np.array(out)
    k, swap_cycle_seen = swapped[0]
    # the swap happened with samples in flight: the one before it had not left the pipeline yet
    assert admitted[k - 1] < swap_cycle_seen < admitted[k - 1] + lat
    want = _golden_switched(a, b, x, k)
    assert np.array_equal(out, want)
    # and the test can tell the weight sets apart on every sample after the swap
    differs = np.any(_golden_switched(a, b, x, len(x))[k:] != want[k:], axis=1)
    assert differs.all()


def test_bad_lanes_are_refused():
    model = random_model("fpga_qb", seed=0)
    with pytest.raises(NnhdlError, match="layer 0"):
        Network(model, lanes=[0, 1, 1])
    with pytest.raises(NnhdlError, match="3 layers"):
        Network(model, lanes=[1, 1])
    with pytest.raises(NnhdlError, match="banks"):
        Network(model, banks=3)
