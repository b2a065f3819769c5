"""Each HDL block against the fixed-point module / golden model, in amaranth.sim, with random stalls."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from nnhdl.configs import LayerSpec, NetworkSpec, random_model
from nnhdl.fixedpoint import QFormat, accumulate, po2_encode, quantize_po2
from nnhdl.hdl.cache import ActivationCache, cache_latency, cache_period
from nnhdl.hdl.conv import Conv1d, Po2Conv1d
from nnhdl.hdl.dot import DotProduct, Po2DotProduct, dot_latency
from nnhdl.hdl.matrix import Po2RowByMatrix, RowByMatrix
from nnhdl.model import Layer, Model
from nnhdl.reference import evaluate_layer, tap_history
from nnhdl.sim.pysim import measure_latency, measure_pipeline, stream_through

FORMATS = [QFormat(16, 12), QFormat(12, 9), QFormat(18, 12), QFormat(24, 20), QFormat(6, 5)]


def _simulate(dut, *testbenches) -> None:
    """Run ``testbenches`` concurrently against ``dut`` on one clock."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for tb in testbenches:
        sim.add_testbench(tb)
    sim.run()


def _values(rng, fmt, shape, extreme):
    if extreme:  # mostly the corners: saturating products and sums
        corners = np.array([fmt.min_int, fmt.max_int, fmt.min_int + 1, -1, 0, 1])
        return np.where(rng.random(shape) < 0.6, rng.choice(corners, shape),
                        rng.integers(fmt.min_int, fmt.max_int + 1, shape))
    return rng.integers(fmt.min_int, fmt.max_int + 1, shape)


def _po2_values(rng, fmt, shape):
    return quantize_po2(rng.normal(0, 0.5, shape) * rng.choice([1, 1e-3, 10], shape), fmt)


@pytest.mark.parametrize("po2", [False, True])
@pytest.mark.parametrize("case", range(4))
def test_dot_product_rows(po2, case):
    rng = np.random.default_rng(100 + case + 10 * po2)
    fmt = FORMATS[case % len(FORMATS)]
    lanes = [1, 2, 3, 5][case]
    beats_per_row = [1, 3, 2, 4][case]
    rows = 12
    n = lanes * beats_per_row
    x = _values(rng, fmt, (rows, n), extreme=case % 2 == 0)
    w = _po2_values(rng, fmt, (rows, n)) if po2 else _values(rng, fmt, (rows, n), extreme=case % 2 == 0)
    b = _values(rng, fmt, rows, extreme=True)
    want = [int(accumulate(x[r].reshape(1, n), w[r].reshape(1, n, 1), b[r:r + 1], fmt)[0]) for r in range(rows)]
    dut = (Po2DotProduct if po2 else DotProduct)(fmt, n, lanes)
    got = []

    async def producer(ctx):
        for r in range(rows):
            for s in range(beats_per_row):
                while rng.random() < 0.3:
                    await ctx.tick()
                beat = dut.i.payload
                for j in range(lanes):
                    t = s * lanes + j
                    ctx.set(beat.x[j], int(x[r, t]))
                    if po2:
                        sign, shift, zero = po2_encode(np.array([w[r, t]]), fmt)
                        ctx.set(beat.w[j].neg, int(sign[0] < 0))
                        ctx.set(beat.w[j].shift, int(shift[0]))
                        ctx.set(beat.w[j].zero, int(zero[0]))
                    else:
                        ctx.set(beat.w[j], int(w[r, t]))
                ctx.set(beat.bias, int(b[r]))
                ctx.set(beat.first, s == 0)
                ctx.set(beat.last, s == beats_per_row - 1)
                ctx.set(dut.i.valid, 1)
                await ctx.tick().until(dut.i.ready)
                ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        while len(got) < rows:
            ready = rng.random() > 0.4
            ctx.set(dut.o.ready, ready)
            _, _, valid, value = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                got.append(int(value))

    _simulate(dut, producer, consumer)
    assert got == want


def _set_beat(ctx, dut, fmt, po2, x, w, bias, first, last):
    beat = dut.i.payload
    for j in range(dut.lanes):
        ctx.set(beat.x[j], int(x[j]))
        if po2:
            sign, shift, zero = po2_encode(np.array([w[j]]), fmt)
            ctx.set(beat.w[j].neg, int(sign[0] < 0))
            ctx.set(beat.w[j].shift, int(shift[0]))
            ctx.set(beat.w[j].zero, int(zero[0]))
        else:
            ctx.set(beat.w[j], int(w[j]))
    ctx.set(beat.bias, int(bias))
    ctx.set(beat.first, first)
    ctx.set(beat.last, last)


@pytest.mark.parametrize("po2", [False, True])
@pytest.mark.parametrize("lanes", [1, 2, 3, 6, 9, 17, 26])
def test_dot_product_latency_and_back_pressure(po2, lanes):
    """Rows back to back, ``o`` always ready: the last beat of each row is consumed the cycle it is offered and
    its sum is on ``o`` exactly ``dot_latency(lanes)`` cycles later; then the same rows with random stalls on
    both sides come out bit-exact (the output queue holds the rows in flight while ``o`` is not taken, and
    ``i.ready`` falls before it overflows).  Throughout, ``ready_next`` is the next cycle's ``i.ready``, the
    promise the row-by-matrix drives its tap-register enable from."""
    rng = np.random.default_rng(lanes + 50 * po2)
    fmt = QFormat(16, 12)
    beats, rows = 2, 10  # more rows than the output queue holds
    n = lanes * beats
    x = _values(rng, fmt, (rows, n), extreme=True)
    w = _po2_values(rng, fmt, (rows, n)) if po2 else _values(rng, fmt, (rows, n), extreme=True)
    b = _values(rng, fmt, rows, extreme=True)
    want = [int(accumulate(x[r].reshape(1, n), w[r].reshape(1, n, 1), b[r:r + 1], fmt)[0]) for r in range(rows)]

    for stall in (0.0, 0.4):
        dut = (Po2DotProduct if po2 else DotProduct)(fmt, n, lanes)
        last_taken, got, seen = [], [], []

        async def producer(ctx):
            cycle = 0
            for r in range(rows):
                for s in range(beats):
                    while rng.random() < stall:
                        await ctx.tick()
                        cycle += 1
                    sl = slice(s * lanes, (s + 1) * lanes)
                    _set_beat(ctx, dut, fmt, po2, x[r, sl], w[r, sl], b[r], s == 0, s == beats - 1)
                    ctx.set(dut.i.valid, 1)
                    while True:  # i.ready as sampled on the clock edge (it follows o.ready)
                        _, _, ready = await ctx.tick().sample(dut.i.ready)
                        cycle += 1
                        if ready:
                            break
                    if s == beats - 1:
                        last_taken.append(cycle - 1)
                    ctx.set(dut.i.valid, 0)

        async def consumer(ctx):
            cycle = 0
            while len(got) < rows:
                # with stalls: nothing taken for the first 40 cycles, so the credit runs out
                ready = stall == 0 or (cycle >= 40 and rng.random() > stall)
                ctx.set(dut.o.ready, ready)
                _, _, valid, value = await ctx.tick().sample(dut.o.valid, dut.o.payload)
                if valid and ready:
                    got.append(int(value))
                    seen.append(cycle)
                cycle += 1

        promises = []

        async def ready_watch(ctx):
            async for _, _, ready, ready_next in ctx.tick().sample(dut.i.ready, dut.ready_next):
                promises.append((ready, ready_next))
                if len(got) == rows:
                    break

        _simulate(dut, producer, consumer, ready_watch)
        assert got == want
        assert all(nxt == now for (_, nxt), (now, _) in zip(promises, promises[1:]))
        assert stall == 0 or any(not ready for ready, _ in promises)  # the stalls did exhaust the credit
        if stall == 0:
            assert dut.latency == dot_latency(lanes)
            assert [o - t for o, t in zip(seen, last_taken)] == [dot_latency(lanes)] * rows


@pytest.mark.parametrize("po2", [False, True])
@pytest.mark.parametrize("lanes", [1, 3, 7])
def test_row_by_matrix_exact_accumulators(po2, lanes):
    rng = np.random.default_rng(lanes + 7 * po2)
    fmt = QFormat(16, 12) if lanes != 3 else QFormat(13, 7)
    n_in, n_out = 7, 5
    w = _po2_values(rng, fmt, (n_in, n_out)) if po2 else _values(rng, fmt, (n_in, n_out), extreme=True)
    b = _values(rng, fmt, n_out, extreme=True)
    x = _values(rng, fmt, (15, n_in), extreme=True)
    dut = (Po2RowByMatrix if po2 else RowByMatrix)(fmt, w, b, lanes)
    res = stream_through(dut, x, stall=0.35, seed=lanes, outputs_per_input=n_out)
    want = accumulate(x.reshape(15, 1, n_in), w.reshape(1, n_in, n_out), b, fmt).reshape(-1)
    assert res.output.reshape(-1).tolist() == want.tolist()


@pytest.mark.parametrize("k,d,dim,fold", [(1, 1, 3, 1), (2, 1, 1, 1), (3, 5, 2, 1), (4, 3, 5, 1), (4, 16, 4, 1),
                                          (2, 1, 3, 3), (3, 5, 5, 2), (4, 3, 7, 3), (4, 2, 4, 4), (2, 7, 6, 4)])
def test_activation_cache_taps(k, d, dim, fold):
    """Taps oldest first, each past entry read as ``fold`` words (the last one padded when fold does not
    divide dim); latency and period are cache_latency and cache_period."""
    rng = np.random.default_rng(k * 100 + d)
    fmt = QFormat(16, 12)
    x = rng.integers(fmt.min_int, fmt.max_int + 1, (3 * ((k - 1) * d + 1) + 5, dim))
    layer = Layer("qb", k, d, dim, 1, "none", np.zeros((k, dim, 1), np.int64), np.zeros(1, np.int64))
    want = tap_history(x, layer).reshape(len(x), -1)
    res = stream_through(ActivationCache(16, dim, k, d, fold), x, stall=0.3, seed=d)
    assert np.array_equal(res.output, want)
    # a reset mid-stream restores the zero history
    r = len(x) // 2
    res = stream_through(ActivationCache(16, dim, k, d, fold), x, stall=0.3, seed=d + 1, reset_after=r)
    want2 = np.concatenate([want[:r], tap_history(x[r:], layer).reshape(len(x) - r, -1)])
    assert np.array_equal(res.output, want2)
    assert measure_latency(ActivationCache(16, dim, k, d, fold), x[:4]) == [cache_latency(k, fold)] * 4
    timing = measure_pipeline(ActivationCache(16, dim, k, d, fold), x[:6])
    assert timing.intervals == [cache_period(k, fold)] * 5
    assert np.array_equal(timing.output, want[:6])


@pytest.mark.parametrize("case", range(6))
def test_conv1d_layer(case):
    rng = np.random.default_rng(case)
    fmt = FORMATS[case % len(FORMATS)]
    kind = "po2" if case % 3 == 2 else "qb"
    k, d = [(1, 1), (2, 3), (3, 5), (4, 1), (4, 6), (2, 2)][case]
    act, relu_max = [("relu", None), ("none", None), ("relu", fmt.max_int // 3)][case % 3]
    spec = NetworkSpec("t", int(rng.integers(1, 6)), (LayerSpec(k, d, int(rng.integers(1, 7)), kind, act, relu_max),),
                       qformat=fmt, rounding=["floor", "nearest"][case % 2])
    model = random_model(spec, seed=case, extreme=case % 2 == 0)
    layer = model.layers[0]
    lanes = int(rng.integers(1, layer.taps + 1))
    x = _values(rng, fmt, (30, layer.in_dim), extreme=True)
    cls = Po2Conv1d if kind == "po2" else Conv1d
    res = stream_through(cls(fmt, model.rounding, layer, lanes), x, stall=0.3, seed=case)
    assert np.array_equal(res.output, evaluate_layer(model, layer, x))


def test_po2_conv_refuses_non_po2_weights():
    model = random_model(NetworkSpec("t", 2, (LayerSpec(1, 1, 2, "qb", "none"),)), seed=0)
    w = model.layers[0].weight.copy()
    w[0, 0, 0] = 3
    with pytest.raises(ValueError, match="power-of-two"):
        Po2Conv1d(model.qformat, "floor", model.layers[0].with_weights(w, model.layers[0].bias), 1)


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(1, 4), d=st.integers(1, 6), in_dim=st.integers(1, 4), out_dim=st.integers(1, 4),
       width=st.integers(4, 24), kind=st.sampled_from(["qb", "po2"]), rounding=st.sampled_from(["floor", "nearest"]),
       lanes_frac=st.floats(0.0, 1.0), seed=st.integers(0, 2**16), extreme=st.booleans())
def test_conv1d_property(k, d, in_dim, out_dim, width, kind, rounding, lanes_frac, seed, extreme):
    fmt = QFormat(width, max(0, min(width - 1, width - 4)))
    spec = NetworkSpec("p", in_dim, (LayerSpec(k, d, out_dim, kind, "relu" if seed % 2 else "none"),),
                       qformat=fmt, rounding=rounding)
    model = random_model(spec, seed=seed, extreme=extreme)
    layer = model.layers[0]
    lanes = 1 + int(lanes_frac * (layer.taps - 1))
    rng = np.random.default_rng(seed)
    x = _values(rng, fmt, (2 * layer.cache_length + 4, in_dim), extreme=True)
    res = stream_through(Conv1d(fmt, rounding, layer, lanes), x, stall=0.25, seed=seed)
    assert np.array_equal(res.output, evaluate_layer(model, layer, x))


@pytest.mark.parametrize("n,elem,depth,skewed", [(26, 16, 640, True), (5, 16, 1100, True), (7, 6, 700, True),
                                                 (3, 24, 600, True), (4, 16, 300, False), (1, 16, 1030, False),
                                                 (9, 12, 513, True)])
def test_weight_store_reads_and_element_writes(n, elem, depth, skewed):
    """Every word reads back as initialised (one read per cycle, ``ren`` low holds the data), then after
    element writes as written; skewed layouts (depth > 512) included, odd element widths and counts."""
    from amaranth import unsigned

    from nnhdl.hdl.store import WRITE_STAGES, WeightStore

    rng = np.random.default_rng(n * 1000 + depth)
    init = rng.integers(0, 1 << elem, (depth, n))
    dut = WeightStore(unsigned(elem), n, depth, init.tolist())
    assert dut.layout.skewed == skewed
    want = init.copy()
    writes = [(int(rng.integers(depth)), int(rng.integers(n)), int(rng.integers(1 << elem))) for _ in range(40)]
    got = {}

    async def tb(ctx):
        async def read_all(tag):
            for t in range(depth):
                ctx.set(dut.raddr, t)
                ctx.set(dut.ren, 1)
                await ctx.tick()
                ctx.set(dut.ren, 0)
                ctx.set(dut.raddr, (t * 7 + 3) % depth)  # ren low: the data must hold
                await ctx.tick()
                got[(tag, t)] = [int(v) for v in ctx.get(dut.rdata)]
        await read_all("init")
        for a, lane, v in writes:
            ctx.set(dut.waddr, a)
            ctx.set(dut.wlane, lane)
            ctx.set(dut.wdata, v)
            ctx.set(dut.wen, 1)
            await ctx.tick()
        ctx.set(dut.wen, 0)
        for _ in range(WRITE_STAGES + 1):
            await ctx.tick()
        await read_all("written")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert [got[("init", t)] for t in range(depth)] == init.tolist()
    for a, lane, v in writes:
        want[a, lane] = v
    assert [got[("written", t)] for t in range(depth)] == want.tolist()
