"""Whole networks in amaranth.sim: bit-exact vs the golden model, stalls, reset, weight writes, schedule."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from nnhdl.configs import REFERENCE, random_model, random_spec
from nnhdl.errors import NnhdlError
from nnhdl.fixedpoint import QFormat
from nnhdl.hdl.network import Network
from nnhdl.hdl.weights import weight_address_map, weight_image
from nnhdl.reference import evaluate
from nnhdl.sim.pysim import measure_latency, stream_through

ODD_FORMATS = [QFormat(16, 12), QFormat(12, 9), QFormat(18, 12), QFormat(10, 4), QFormat(24, 20)]


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
    assert lat == [net.cycles_per_sample] * 4


def test_predicted_cycles_reference():
    model = random_model("fpga_qb", seed=0)
    for lanes in (None, 4):
        net = Network(model, lanes=lanes)
        assert measure_latency(net, _inputs(model, 2, 0)) == [net.cycles_per_sample] * 2


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
    image = weight_image(model)
    blocks = weight_address_map(model)
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


@pytest.mark.parametrize("name,lanes", [("fpga_po2", 3), ("mcu", None)])
def test_runtime_weight_write_single_bank(name, lanes):
    built = random_model(name, seed=1)
    loaded = random_model(name, seed=2, extreme=True)
    dut = Network(built, lanes=lanes)
    x = _inputs(built, 30, 9)
    res = stream_through(dut, x, setup=_write_image(dut, weight_image(loaded)))
    assert np.array_equal(res.output, evaluate(loaded, x))


def test_bank_swap_between_samples():
    a = random_model("fpga_po2", seed=1)
    b = random_model("fpga_po2", seed=7, extreme=True)
    dut = Network(a, lanes=4, banks=2)
    x = _inputs(a, 14, 3)
    image = weight_image(b)
    swap_at = 10
    out = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        w = 0
        for t, vec in enumerate(x):
            for j, v in enumerate(vec):
                ctx.set(dut.i.payload[j], int(v))
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            c = 0
            while True:
                # write B into the inactive bank while A computes
                if w < len(image):
                    ctx.set(dut.weight_write.addr, w)
                    ctx.set(dut.weight_write.data, int(image[w]))
                    ctx.set(dut.weight_write.en, 1)
                    w += 1
                else:
                    ctx.set(dut.weight_write.en, 0)
                # a swap request in the middle of a sample waits for its end
                ctx.set(dut.bank_swap, int(t == swap_at - 1 and c == 5))
                _, _, valid, payload, busy, bank = await ctx.tick().sample(
                    dut.o.valid, dut.o.payload, dut.busy, dut.active_bank)
                c += 1
                assert busy, "busy must stay high until the output is taken"
                assert bank == int(t >= swap_at), f"bank {bank} during sample {t}"
                if valid:
                    out.append([int(v) for v in payload])
                    break
            ctx.set(dut.bank_swap, 0)
            await ctx.tick().repeat(3)
        assert w == len(image)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    out = np.array(out)
    # one history, two weight sets: the golden model switches weights after sample 10
    from nnhdl.reference import StreamingModel

    ref = StreamingModel(a)
    want_a = ref.run(x[:swap_at])
    ref._weights = [l.weight.reshape(l.taps, l.out_dim) for l in b.layers]
    ref.model = b
    want_b = ref.run(x[swap_at:])
    assert np.array_equal(out[:swap_at], want_a)
    assert np.array_equal(out[swap_at:], want_b)
    assert not np.array_equal(want_b, evaluate(a, x)[swap_at:])


def test_bad_lanes_are_refused():
    model = random_model("fpga_qb", seed=0)
    with pytest.raises(NnhdlError, match="layer 0"):
        Network(model, lanes=[0, 1, 1])
    with pytest.raises(NnhdlError, match="3 layers"):
        Network(model, lanes=[1, 1])
    with pytest.raises(NnhdlError, match="banks"):
        Network(model, banks=3)
