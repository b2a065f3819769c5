"""Board network core: counts >> 2 -> Network -> << 2 saturated, mapping and counters,
against nnhdl.reference through the mapping written out in soc_helpers."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from nnhdl.errors import NnhdlError
from nnhdl.hdl.network import Network
from soc.core import BoardCore, ChannelMap
from tests.soc_helpers import board_expected, small_model

# Networks built only for their port list / schedule are never elaborated.
pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def cycles_of(model):
    """Input-to-output cycles of the network (one sample in flight at this spacing)."""
    from nnhdl.hdl.schedule import resolve_lanes, schedule
    return schedule(model, resolve_lanes(model, None)).latency


def interval_of(model):
    from nnhdl.hdl.schedule import resolve_lanes, schedule
    return schedule(model, resolve_lanes(model, None)).initiation_interval


def run_core(model, counts, *, period, bypass=False, emb=None, channels=None, delay_frames=0, frames=None):
    """Feed ``counts`` one every ``period`` cycles; collect the outputs (and, into ``frames``, the input
    interval each appeared in: k = after input k arrived, before input k+1)."""
    net = Network(model, banks=2)
    dut = BoardCore(model, net, channels, delay_frames=delay_frames)
    outs, status = [], {}
    frames = [] if frames is None else frames

    async def bench(ctx):
        ctx.set(dut.bypass, int(bypass))
        if emb is not None:
            ctx.set(dut.emb_override, 1)
            ctx.set(dut.emb_value[0], emb[0])
            ctx.set(dut.emb_value[1], emb[1])
        for t, row in enumerate(counts):
            ctx.set(dut.adc.payload, [int(v) for v in row])
            ctx.set(dut.adc.valid, 1)
            for k in range(period):  # an output can leave in any cycle, the ADC's one included
                if ctx.get(dut.dac.valid):
                    outs.append([ctx.get(dut.dac.payload[c]) for c in range(4)])
                    frames.append(t)
                await ctx.tick()
                ctx.set(dut.adc.valid, 0)
        for _ in range(3 * net.latency):
            if ctx.get(dut.dac.valid):
                outs.append([ctx.get(dut.dac.payload[c]) for c in range(4)])
            await ctx.tick()
        for k in ("samples", "overruns", "saturations", "cycles", "cycles_max"):
            status[k] = ctx.get(getattr(dut, k))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return np.array(outs).reshape(-1, 4), status, net


def test_matches_golden_model_with_saturation():
    model = small_model(3, extreme=True)  # extreme weights: outputs saturate often
    rng = np.random.default_rng(0)
    counts = rng.integers(-32768, 32768, size=(60, 4))
    net_cycles = cycles_of(model)
    out, st, net = run_core(model, counts, period=net_cycles + 8)
    want = board_expected(model, counts)
    np.testing.assert_array_equal(out, want)
    assert st["saturations"] > 0  # exact count: next test
    assert st["overruns"] == 0 and st["samples"] == len(counts)
    assert st["cycles"] == st["cycles_max"] == net.latency


def test_pipelined_at_the_initiation_interval():
    """Samples arriving every II cycles (several in flight): no overrun, every output exact, latency exact."""
    model = small_model(3, extreme=True)
    ii, lat = interval_of(model), cycles_of(model)
    assert lat > 2 * ii  # the case is only interesting with samples overlapping
    counts = np.random.default_rng(5).integers(-32768, 32768, size=(40, 4))
    out, st, net = run_core(model, counts, period=ii)
    np.testing.assert_array_equal(out, board_expected(model, counts))
    assert st["overruns"] == 0 and st["cycles"] == st["cycles_max"] == net.latency


@pytest.mark.parametrize("extra", [0, 1])
def test_delayed_answers_leave_exactly_d_frames_later(extra):
    """delay_frames = D: the answer to input t is released after input t + D arrives (never before,
    even when ready sooner), within that interval, in order; values and counters as without delay.
    D = the least that holds the latency (extra 0), or one more (extra 1).  A delayed answer appears
    latency + 3 cycles after its input (the input register, the hold FIFO's read, the DAC register), so
    it is inside input interval t + D when latency + 3 < (D + 1) * period."""
    model = small_model(3, extreme=True)
    ii, lat = interval_of(model), cycles_of(model)
    period = ii + 3
    d = (lat + 3) // period + extra
    assert d >= 1 + extra
    counts = np.random.default_rng(12).integers(-32768, 32768, size=(30, 4))
    frames = []
    out, st, net = run_core(model, counts, period=period, delay_frames=d, frames=frames)
    n = len(counts) - d  # the last D answers wait for inputs that never come
    np.testing.assert_array_equal(out, board_expected(model, counts)[:n])
    assert frames == list(range(d, len(counts)))  # answer t in input interval t + D
    assert st["overruns"] == 0 and st["cycles"] == st["cycles_max"] == net.latency
    from nnhdl.reference import evaluate
    x = np.stack([counts[:, 0] >> 2, counts[:, 1] >> 2, counts[:, 2] >> 2, 0 * counts[:, 0]], axis=1)
    y = evaluate(model, x)[:n, 0]
    assert st["saturations"] == int(np.sum((y >= 8192) | (y < -8192)))


def test_saturation_count_exact():
    model = small_model(5, extreme=True)
    rng = np.random.default_rng(1)
    counts = rng.integers(-32768, 32768, size=(40, 4))
    net_cycles = cycles_of(model)
    out, st, _ = run_core(model, counts, period=net_cycles + 8)
    from nnhdl.reference import evaluate
    x = np.stack([counts[:, 0] >> 2, counts[:, 1] >> 2, counts[:, 2] >> 2, 0 * counts[:, 0]], axis=1)
    y = evaluate(model, x)[:, 0]
    assert st["saturations"] == int(np.sum((y >= 8192) | (y < -8192)))


def test_custom_mapping_and_embedding_override():
    model = small_model(7)
    rng = np.random.default_rng(2)
    counts = rng.integers(-20000, 20000, size=(30, 4))
    ch = ChannelMap.from_lists(model, [3, None, 0, 1], [2, None, 0, 1])
    net_cycles = cycles_of(model)
    out, st, _ = run_core(model, counts, period=net_cycles + 8, channels=ch, emb=(-1000, 30001))
    # network input 1 <- embedding override 0, input 2 <- override 1 (inputs 1, 2 are the embedding)
    mod = np.stack([counts[:, 3], np.full(30, -1000), np.full(30, 30001), counts[:, 1]], axis=1)
    want = board_expected(model, mod, inputs=[0, 1, 2, 3], outputs=(2, None, 0, 1))
    np.testing.assert_array_equal(out, want)


def test_overrun_drops_samples_and_counts():
    model = small_model(4)
    rng = np.random.default_rng(3)
    counts = rng.integers(-32768, 32768, size=(20, 4))
    ii = interval_of(model)
    period = ii // 2 + 1  # faster than the network takes samples
    out, st, _ = run_core(model, counts, period=period)
    assert st["overruns"] > 0
    assert st["overruns"] + len(out) == len(counts)
    # the accepted samples form a subsequence the network processed in order.  Sample u arrives in
    # cycle u*period and is kept if the previous kept one was taken by then; the network takes a
    # kept sample one cycle after it arrives, but never sooner than II cycles after the previous one.
    accepted, taken_at = [], None
    for u in range(len(counts)):
        arrive = u * period
        if taken_at is None or taken_at <= arrive:
            taken_at = arrive + 1 if taken_at is None else max(arrive + 1, taken_at + ii)
            accepted.append(u)
    np.testing.assert_array_equal(out, board_expected(model, counts[accepted]))


def test_bypass_copies_inputs():
    model = small_model(1)
    counts = np.array([[1, -2, 3, -32768], [32767, 0, -5, 7]])
    out, st, _ = run_core(model, counts, period=10, bypass=True)
    np.testing.assert_array_equal(out, counts)


def test_channel_map_errors():
    model = small_model(1)
    with pytest.raises(NnhdlError, match="inputs\\[1\\]"):
        ChannelMap.from_lists(model, [0, 7, None, None], [0, None, None, None])
    with pytest.raises(NnhdlError, match="outputs\\[0\\]"):
        ChannelMap.from_lists(model, [0, 1, 2, None], [5, None, None, None])
    with pytest.raises(NnhdlError, match="'outputs' needs 4"):
        ChannelMap.from_lists(model, [0, 1, 2, None], [0])


def test_bypass_toggled_mid_computation_recovers():
    """Bypass set while the network computes, then cleared: no stuck 'busy', no overruns after."""
    model = small_model(6)
    net = Network(model, banks=2)
    dut = BoardCore(model, net)
    period = net.latency + 8  # one sample in flight: bypass set during sample 4 covers its finish
    rng = np.random.default_rng(8)
    counts = rng.integers(-30000, 30000, size=(12, 4))
    outs = []

    async def bench(ctx):
        for t, row in enumerate(counts):
            ctx.set(dut.adc.payload, [int(v) for v in row])
            ctx.set(dut.adc.valid, 1)
            await ctx.tick()
            ctx.set(dut.adc.valid, 0)
            for c in range(period - 1):
                ctx.set(dut.bypass, int(t == 4 and c >= 3))  # set just after sample 4 was accepted
                if ctx.get(dut.dac.valid):
                    outs.append((t, [ctx.get(dut.dac.payload[i]) for i in range(4)]))
                await ctx.tick()
            ctx.set(dut.bypass, 0)
        assert ctx.get(dut.overruns) == 0

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    produced = [t for t, _ in outs]
    assert 4 not in produced  # sample 4's result was dropped (bypass was on when it finished)
    assert produced[-1] == len(counts) - 1  # the core kept running afterwards
