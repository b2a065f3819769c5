"""TDM128 serdes against the codec model: frames in and out, latency contract."""

import numpy as np
from amaranth.sim import Simulator

from soc.tdm import FRAME_CYCLES, TDMSerdes
from tests.pmod_models import CodecModel


def run_loopback(adc_frames, dac_words, n_frames):
    """Drive the serdes with the codec model; feed ``dac_words[k]`` after the k-th adc sample."""
    dut = TDMSerdes()
    codec = CodecModel(adc_frames)
    got_adc = []

    async def bench(ctx):
        sdout = 0
        for _ in range(n_frames * FRAME_CYCLES + 8):
            ctx.set(dut.sdout, sdout)
            await ctx.tick()
            if ctx.get(dut.adc.valid):
                got_adc.append([int(v) for v in ctx.get(dut.adc.payload)])
                k = len(got_adc) - 1
                ctx.set(dut.dac.valid, 1)
                ctx.set(dut.dac.payload, dac_words[k] if k < len(dac_words) else [0] * 4)
            else:
                ctx.set(dut.dac.valid, 0)
            sdout = codec.step(ctx.get(dut.bick), ctx.get(dut.lrck), ctx.get(dut.sdin))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got_adc, codec.dac_frames


def test_frames_in_and_out():
    rng = np.random.default_rng(1)
    n = 7
    adc = rng.integers(-32768, 32768, size=(n, 4)).tolist()
    adc[0] = [-32768, 32767, 1, -1]
    dac = rng.integers(-32768, 32768, size=(n, 4)).tolist()
    dac[1] = [-32768, 32767, -2, 0x5555]
    got_adc, got_dac = run_loopback(adc, dac, n)
    # The codec starts at the first LRCK falling edge, i.e. serdes frame 1:
    # codec frame c is serdes frame c + 1, whose samples are adc sample c + 1.
    assert got_adc[0] == [0, 0, 0, 0]
    assert len(got_adc) >= n
    assert got_adc[1:n] == adc[: n - 1]
    # the word given in answer to adc sample k (emitted as serdes frame k
    # ends) is held when frame k + 1 ends and transmitted in serdes frame
    # k + 2 = codec frame k + 1: a core has a whole frame to answer.
    assert len(got_dac) >= n - 2
    assert got_dac[0] == [0, 0, 0, 0]
    for k in range(n - 3):
        assert got_dac[k + 1] == dac[k], k


def test_pin_timing():
    """BICK = MCLK/2, LRCK = MCLK/256 with 50% duty, low first."""
    dut = TDMSerdes()
    bick, lrck = [], []

    async def bench(ctx):
        for _ in range(2 * FRAME_CYCLES):
            bick.append(ctx.get(dut.bick))
            lrck.append(ctx.get(dut.lrck))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert bick[:4] == [0, 1, 0, 1]
    assert lrck[:128] == [0] * 128 and lrck[128:256] == [1] * 128
    assert sum(bick) == FRAME_CYCLES
