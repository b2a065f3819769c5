"""End to end at the sample level in Verilator, >= 2,000 samples: codec TDM frames carrying a
triangle wave and embedding values -> calibration -> network -> TDM frames out, equal to the
golden model's integers through the same mapping (one-frame processing latency)."""

import numpy as np
import pytest

from nnhdl.configs import random_model
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
