"""End to end at the sample level in Verilator, >= 2,000 samples: codec TDM frames carrying a
triangle wave and embedding values -> calibration -> network -> TDM frames out, equal to the
golden model's integers through the same mapping: the answer to frame f in frame f+2 when the
network's latency fits one sample period, in frame f+2+D when it spans D more (soc.core)."""

import numpy as np
import pytest

from nnhdl.configs import LayerSpec, NetworkSpec, random_model
from nnhdl.hdl.network import Network
from soc.calibration import CalConstants
from soc.pmod import PmodOptions, PmodTop, to_verilog
from tests import pmod_verilator
from tests.soc_helpers import board_expected, small_model


def cal(x, pairs, invert):
    x = np.asarray(x, dtype=np.int64)
    x = -x if invert else x
    return np.clip(((x - np.array([p[0] for p in pairs])) * np.array([p[1] for p in pairs])) >> 10, -32768, 32767)


def triangle(n, period):
    ph = (np.arange(n) % period) / period
    return np.round((1 - 4 * np.abs(ph - 0.5)) * 20000).astype(np.int64)  # +-20000 counts = +-5 V


@pytest.mark.skipif(not pmod_verilator.available(), reason="verilator not installed (CI installs it)")
@pytest.mark.parametrize("clocking", ["cdc", "mclk"])
def test_pmod_end_to_end_verilator(tmp_path, clocking):
    # mclk (the default clocking for fpga_qb) with fpga_qb; cdc with a small model (faster to compile)
    model = random_model("fpga_qb", seed=3) if clocking == "mclk" else small_model(3)
    calib = CalConstants(adc=((12, 1030), (-40, 1000), (25, 1010), (0, 1024)),
                         dac=((-9, 1018), (0, 1024), (0, 1024), (0, 1024)))
    # cdc: sys clock 10/3 of MCLK, 853 cycles per sample; mclk: exactly 256 (fpga_qb needs fewer)
    # the whole latency must fit a sample period: caches unfolded (fold 1, fewest cycles), as the board
    # build's latency-capped plan keeps them when folding would not fit
    net = Network(model, banks=2, folds=[1] * len(model.layers))
    assert net.latency + 16 < 256
    opts = PmodOptions(sample_rate=192000, sys_clk_hz=164e6 if clocking == "cdc" else 49.152e6, clocking=clocking)
    top = PmodTop(model, net, options=opts, cal=calib)
    text, _ = to_verilog(top)
    exe = pmod_verilator.build(text, tmp_path / "v", single_clock=clocking == "mclk")
    n = 2400
    rng = np.random.default_rng(9)
    e = np.repeat(rng.integers(-20000, 20000, size=(n // 300, 2)), 300, axis=0)  # embedding CVs, steps
    adc = -np.stack([triangle(n, 97), e[:, 0], e[:, 1], rng.integers(-500, 500, n)], axis=1)  # board inverts
    got = pmod_verilator.run(exe, adc)
    x = cal(np.concatenate([np.zeros((1, 4), np.int64), adc]), calib.adc, True)
    want = cal(board_expected(model, x), calib.dac, False)
    assert len(got) >= n
    np.testing.assert_array_equal(got[0], [0, 0, 0, 0])
    np.testing.assert_array_equal(got[1:n], want[: n - 1])
    assert np.ptp(want[:, 0]) > 1000  # the shaped wave moves


# eight layers at one lane each: a sample every 66 cycles, but 583 cycles from input to output
DEEP = NetworkSpec("deep", 4, tuple([LayerSpec(4, 2 ** (i % 3), 4, "qb", "relu") for i in range(7)]
                                    + [LayerSpec(3, 1, 4, "qb", "none")]))


@pytest.mark.skipif(not pmod_verilator.available(), reason="verilator not installed (CI installs it)")
@pytest.mark.parametrize("clocking", ["cdc", "mclk"])
def test_latency_beyond_one_period_verilator(tmp_path, clocking):
    """A pipelined plan whose latency spans several sample periods: its initiation interval keeps up
    with the codec, and the answer to frame f leaves in frame f+2+D, every sample, D written here
    from the figures (the least D with latency + margin <= (D + 1) x cycles per sample)."""
    if clocking == "cdc":
        # the small model at one lane (II 50, latency 91), sys clock = 100/256 MCLK: 100 cycles per
        # sample.  91 + the crossings' few cycles fit one period, 91 + the margin do not: D = 1, and
        # the core must hold each answer for frame f+1 to arrive (or it would leave a frame early).
        model, audio_half, sys_half, budget, margin, want_d = small_model(5), 25, 64, 100, 16, 1
    else:  # DEEP on MCLK: 256 cycles per sample
        model, audio_half, sys_half, budget, margin, want_d = random_model(DEEP, 2), 10, 3, 256, 8, 2
    net = Network(model, lanes=1, banks=2)
    assert net.initiation_interval + margin <= budget < net.latency + margin
    d = -(-(net.latency + margin) // budget) - 1
    assert d == want_d
    opts = PmodOptions(sample_rate=192000, sys_clk_hz=192000 * budget, clocking=clocking, delay_frames=d)
    calib = CalConstants.default()
    text, _ = to_verilog(PmodTop(model, net, options=opts, cal=calib))
    exe = pmod_verilator.build(text, tmp_path / "v", single_clock=clocking == "mclk")
    n = 2000
    rng = np.random.default_rng(11)
    e = np.repeat(rng.integers(-20000, 20000, size=(n // 200, 2)), 200, axis=0)
    adc = -np.stack([triangle(n, 61) + rng.integers(-300, 300, n), e[:, 0], e[:, 1], np.zeros(n, np.int64)],
                    axis=1)
    got = pmod_verilator.run(exe, adc, extra_frames=3 + d, audio_half=audio_half, sys_half=sys_half)
    x = cal(np.concatenate([np.zeros((1, 4), np.int64), adc]), calib.adc, True)
    want = cal(board_expected(model, x), calib.dac, False)
    lag = 1 + d  # (the harness's first frame is silence: x[0])
    assert len(got) >= n + lag
    np.testing.assert_array_equal(got[:lag], 0)
    np.testing.assert_array_equal(got[lag:n + lag], want[:n])
    assert np.ptp(want[:, 0]) > 1000
