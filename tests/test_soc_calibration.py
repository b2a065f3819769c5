"""Calibration stage against DESIGN §6's formula, written out here in numpy."""

import json

import numpy as np
import pytest
from amaranth.sim import Simulator

from nnhdl.errors import NnhdlError
from soc.calibration import CalConstants, Calibrator


def expected(x, pairs, invert, plugged):
    x = np.asarray(x, dtype=np.int64)
    if invert:
        x = -x
    off = np.array([p[0] for p in pairs])
    mul = np.array([p[1] for p in pairs])
    y = np.clip(((x - off) * mul) >> 10, -32768, 32767)
    return np.where(np.array([(plugged >> c) & 1 for c in range(4)]) == 1, y, 0)


def run(pairs, invert, xs, plugged=0xF):
    dut = Calibrator(pairs, invert=invert)
    got, clipped = [], []

    async def bench(ctx):
        ctx.set(dut.plugged, plugged)
        for x in xs:
            ctx.set(dut.i.payload, [int(v) for v in x])
            ctx.set(dut.i.valid, 1)
            await ctx.tick()
            ctx.set(dut.i.valid, 0)
            assert ctx.get(dut.o.valid)
            got.append([ctx.get(dut.o.payload[c]) for c in range(4)])
            clipped.append(ctx.get(dut.clipped))
            await ctx.tick()
            assert not ctx.get(dut.o.valid)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got), np.array(clipped)


@pytest.mark.parametrize("seed,invert", [(0, True), (1, False), (2, True)])
def test_matches_formula(seed, invert):
    rng = np.random.default_rng(seed)
    pairs = tuple((int(rng.integers(-2000, 2000)), int(rng.integers(-32768, 32768))) for _ in range(4))
    xs = rng.integers(-32768, 32768, size=(150, 4))
    xs[:4] = [[-32768, 32767, 0, -1]] * 4  # the inversion corner: -(-32768)
    plugged = int(rng.integers(0, 16))
    got, clipped = run(pairs, invert, xs, plugged)
    want = np.stack([expected(x, pairs, invert, plugged) for x in xs])
    np.testing.assert_array_equal(got, want)
    # clipping is flagged exactly when some channel's raw value left int16
    x = -xs if invert else xs
    raw = ((x - np.array([p[0] for p in pairs])) * np.array([p[1] for p in pairs])) >> 10
    np.testing.assert_array_equal(clipped, ((raw > 32767) | (raw < -32768)).any(axis=1))


def test_unity_defaults_invert_adc():
    cal = CalConstants.default()
    got, _ = run(cal.adc, True, [[100, -100, 32767, -32768]])
    # unity gain, zero offset: the ADC reading is just negated (and -(-32768) saturates)
    assert cal.adc == ((0, 1024),) * 4
    assert got[0].tolist() == [-100, 100, -32767, 32767]


def test_load_user_file(tmp_path):
    p = tmp_path / "cal.json"
    p.write_text(json.dumps({"adc": [[1, 2], [3, 4], [5, 6], [7, 8]], "dac": [[0, 1024]] * 4}))
    assert CalConstants.load(p).adc[3] == (7, 8)
    p.write_text(json.dumps({"adc": [[1, 2]] * 3, "dac": [[0, 1024]] * 4}))
    with pytest.raises(NnhdlError, match="'adc' must be a list of 4"):
        CalConstants.load(p)
    p.write_text(json.dumps({"adc": [[1, 2]] * 4, "dac": [[0, 99999]] * 4}))
    with pytest.raises(NnhdlError, match=r"dac\[0\]"):
        CalConstants.load(p)
    with pytest.raises(NnhdlError, match="cannot read"):
        CalConstants.load(tmp_path / "missing.json")
