"""Runtime weight reload: new weights written into the inactive bank while audio streams,
then a bank swap.  Before the swap outputs follow the old model, from the swap's sample
on the new one (continuing with the same activation history)."""

import numpy as np
from amaranth.sim import Simulator

from nnhdl.hdl.network import Network
from nnhdl.reference import StreamingModel
from soc.core import BoardCore
from tests.soc_helpers import small_model


def expected_with_swap(old, new, x, k):
    """Old model for samples < k, then the new weights with the caches carried over."""
    a = StreamingModel(old)
    out = [a.step(v) for v in x[:k]]
    b = StreamingModel(new)
    b.caches = [c.copy() for c in a.caches]
    b.pointers = list(a.pointers)
    out += [b.step(v) for v in x[k:]]
    return np.array(out)


def test_reload_while_streaming():
    old, new = small_model(21), small_model(22)
    assert old.same_shapes(new)
    net = Network(old, banks=2)
    dut = BoardCore(old, net)
    period = net.latency + 20  # one sample in flight: the swap lands with the network idle
    rng = np.random.default_rng(5)
    n, k_swap = 40, 25
    counts = rng.integers(-30000, 30000, size=(n, 4))
    image = new.weight_image()
    outs = []

    async def feeder(ctx):
        for t, row in enumerate(counts):
            ctx.set(dut.adc.payload, [int(v) for v in row])
            ctx.set(dut.adc.valid, 1)
            await ctx.tick()
            ctx.set(dut.adc.valid, 0)
            for c in range(period - 1):
                if ctx.get(dut.dac.valid):
                    outs.append([ctx.get(dut.dac.payload[i]) for i in range(4)])
                # one weight write per cycle while the audio streams (from sample 3 on)
                w = (t - 3) * (period - 1) + c
                if 0 <= w < len(image):
                    ctx.set(dut.weight_write.addr, w)
                    ctx.set(dut.weight_write.data, int(image[w]))
                    ctx.set(dut.weight_write.en, 1)
                else:
                    ctx.set(dut.weight_write.en, 0)
                # swap pulse two cycles before sample k_swap arrives (network idle)
                ctx.set(dut.bank_swap, int(t == k_swap - 1 and c == period - 4))
                await ctx.tick()
            assert ctx.get(dut.active_bank) == int(t >= k_swap - 1 and t + 1 >= k_swap), t
        for _ in range(2 * period):
            if ctx.get(dut.dac.valid):
                outs.append([ctx.get(dut.dac.payload[i]) for i in range(4)])
            await ctx.tick()

    assert len(image) < (k_swap - 4) * (period - 1)  # upload finishes before the swap
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(feeder)
    sim.run()
    x = np.stack([counts[:, 0] >> 2, counts[:, 1] >> 2, counts[:, 2] >> 2, np.zeros(n, np.int64)], axis=1)
    y = expected_with_swap(old, new, x, k_swap)
    want = np.zeros((n, 4), np.int64)
    want[:, 0] = np.clip(y[:, 0] * 4, -32768, 32767)
    got = np.array(outs)
    np.testing.assert_array_equal(got[:k_swap], want[:k_swap])
    np.testing.assert_array_equal(got[k_swap:], want[k_swap:])
    # the swap changed something (the test would be vacuous otherwise)
    only_old = expected_with_swap(old, old, x, k_swap)
    assert not np.array_equal(only_old[k_swap:, 0], y[k_swap:, 0])
