"""The float32 path: host build within tolerance of the float reference, and the
cmsisdsp Python mirror call for call against the C program."""

from __future__ import annotations

import numpy as np
import pytest

from nnhdl.configs import REFERENCE, random_model, random_spec
from nnhdl.reference import evaluate_float

from mcu.build import build_host, run_host
from mcu.check import check, f32_close, make_test_input
from mcu.export import generate

pytest.importorskip("cmsisdsp")


def _x(model, n, seed=0):
    return (make_test_input(model, n, seed) / model.qformat.scale).astype(np.float32)


@pytest.mark.parametrize("name", sorted(REFERENCE))
@pytest.mark.parametrize("style", ["unrolled", "cmsis"])
def test_f32_reference_configs_within_tolerance(name, style, tmp_path):
    model = random_model(name, seed=21)
    x = _x(model, 10_000, 1)
    y, _ = run_host(build_host(generate(model, "f32", style=style), tmp_path), x)
    ok, err = f32_close(y, evaluate_float(model, x.astype(np.float64)))
    assert ok, f"max error {err}"


def test_f32_random_models_within_tolerance(tmp_path):
    rng = np.random.default_rng(5)
    for i in range(4):
        spec = random_spec(rng, max_layers=4, max_dim=7, max_dilation=7)
        model = random_model(spec, seed=i)
        x = _x(model, 3000, i)
        y, _ = run_host(build_host(generate(model, "f32"), tmp_path / str(i)), x)
        ok, err = f32_close(y, evaluate_float(model, x.astype(np.float64)))
        assert ok, f"model {i}: max error {err}"


def test_mirror_matches_c_call_for_call(tmp_path):
    from mcu.mirror import compare_trace, mirror_f32

    model = random_model("mcu", seed=22)
    x = _x(model, 500, 2)
    y, trace = run_host(build_host(generate(model, "f32", style="cmsis"), tmp_path, trace=True), x, trace=True)
    my, per_sample, flat = mirror_f32(model, x)
    # mcu: 9 layers, 8 with ReLU -> mat_mult + add (+ clip) = 26 calls per sample
    assert len(per_sample[0]) == 26
    calls, worst = compare_trace(trace, flat)
    assert calls == 26 * len(x)
    assert np.allclose(y, my, rtol=0, atol=1e-6)


def test_mirror_alone_tracks_float_reference():
    from mcu.mirror import mirror_f32

    model = random_model("fpga_po2", seed=23)
    x = _x(model, 300, 3)
    y, _, _ = mirror_f32(model, x)
    ok, err = f32_close(y, evaluate_float(model, x.astype(np.float64)))
    assert ok, err


def test_mirror_detects_a_different_program():
    from mcu.mirror import compare_trace, mirror_f32
    from nnhdl.errors import NnhdlError

    model = random_model("mcu", seed=24)
    x = _x(model, 5, 0)
    _, _, flat = mirror_f32(model, x)
    bad = [a.copy() for a in flat]
    bad[7] = bad[7] + np.float32(1e-3)
    with pytest.raises(NnhdlError, match="call 7"):
        compare_trace(bad, flat)
    with pytest.raises(NnhdlError, match="traced calls"):
        compare_trace(flat[:-1], flat)


def test_check_runner_f32_cmsis_host(tmp_path):
    model = random_model("mcu", seed=25)
    rep = check(model, "f32", style="cmsis", samples=1000, workdir=tmp_path, arm=False, say=lambda s: None)
    assert rep.mirror_calls == 26 * 1000


@pytest.mark.parametrize("block", [0, 3, 16])
def test_f32_blocking_keeps_every_sum_order(block, tmp_path):
    """Blocking changes the statement order, not any output's sum order: bit-identical results."""
    model = random_model("fpga_qb", seed=26)
    x = _x(model, 1000, 4)
    ref, _ = run_host(build_host(generate(model, "f32", block=0), tmp_path / "ref"), x)
    y, _ = run_host(build_host(generate(model, "f32", block=block), tmp_path / "b"), x)
    assert np.array_equal(y.view(np.uint32), ref.view(np.uint32))
