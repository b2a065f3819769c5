"""The whole pmod path in amaranth.sim: codec TDM frames in -> calibration -> network ->
calibration -> TDM frames out, two clock domains, I2C running against target models."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from nnhdl.hdl.network import Network
from soc.calibration import CalConstants
from soc.pmod import PmodOptions, PmodTop
from soc.pmod_init import AK4619_ADDR, EEPROM_ADDR, JACK_ADDR, LED_ADDR
from tests.pmod_models import CodecModel, I2CBus, I2CTarget
from tests.soc_helpers import board_expected, small_model


def cal(x, pairs, invert):
    x = np.asarray(x, dtype=np.int64)
    x = -x if invert else x
    return np.clip(((x - np.array([p[0] for p in pairs])) * np.array([p[1] for p in pairs])) >> 10, -32768, 32767)


@pytest.mark.parametrize("clocking", ["cdc", "mclk"])
def test_codec_to_codec(clocking):
    model = small_model(11)
    calib = CalConstants(adc=((10, 1100), (-20, 900), (0, 1024), (5, 1024)),
                         dac=((-7, 1000), (0, 1024), (3, 1050), (0, 1024)))
    opts = PmodOptions(sample_rate=48000, sys_clk_hz=1e6, i2c_divider=2, delay_shift=1, reset_delay=1,
                       clocking=clocking)
    dut = PmodTop(model, Network(model, banks=2), options=opts, cal=calib)
    n = 16
    t = np.arange(n)
    tri = (np.abs((t * 2300) % 40000 - 20000) - 10000).astype(np.int64)  # triangle wave, counts
    adc = np.stack([tri, np.full(n, -4000), np.full(n, 7000), np.full(n, 123)], axis=1)
    codec = CodecModel(adc.tolist())
    bus = I2CBus({AK4619_ADDR: I2CTarget(), LED_ADDR: I2CTarget(size=32, pointer_bits=5),
                  JACK_ADDR: I2CTarget({0: 0x0F}), EEPROM_ADDR: I2CTarget()})

    async def codec_bench(ctx):
        sdout = 0
        for _ in range((n + 3) * 256):
            ctx.set(dut.sdout, sdout)
            await ctx.tick("audio" if clocking == "cdc" else "sync")
            sdout = codec.step(ctx.get(dut.bick), ctx.get(dut.lrck), ctx.get(dut.sdin))

    async def i2c_bench(ctx):
        sda = 1
        while True:
            ctx.set(dut.sda_i, sda)
            await ctx.tick()
            _, sda = bus.step(ctx.get(dut.scl_oe), ctx.get(dut.sda_oe))

    sim = Simulator(dut)
    if clocking == "cdc":
        sim.add_clock(20e-9, domain="audio")
        sim.add_clock(7e-9, domain="sync")
    else:
        sim.add_clock(20e-9, domain="sync")  # the network gets 256 MCLK cycles per sample
    sim.add_testbench(codec_bench)
    sim.add_testbench(i2c_bench, background=True)
    sim.run()
    got = np.array(codec.dac_frames)
    # the network sees: the (calibrated) empty serdes frame 0 before the codec's first LRCK edge, then codec frames
    x = cal(np.concatenate([np.zeros((1, 4), np.int64), adc]), calib.adc, True)
    want = cal(board_expected(model, x), calib.dac, False)
    # codec output frame g carries the network's answer to network sample g - 1
    assert len(got) >= n
    np.testing.assert_array_equal(got[0], [0, 0, 0, 0])
    np.testing.assert_array_equal(got[1:n], want[: n - 1])
    assert len(set(want[:, 0].tolist())) > 3  # not a constant output

