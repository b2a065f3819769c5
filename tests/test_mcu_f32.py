"""The float32 path: host build within the derived float32 error bound of the
float reference, the unrolled program bit-identical to its IEEE emulation, and
the cmsisdsp Python mirror call for call against the C program -- and each of
these checks refusing a wrong weight, a swapped call and an off-by-one bias."""

from __future__ import annotations

import copy
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from nnhdl.configs import REFERENCE, random_model, random_spec
from nnhdl.errors import NnhdlError
from nnhdl.reference import FLOAT32_UNIT_ROUNDOFF, evaluate_float, evaluate_float_bound

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
    ok, err, share = f32_close(model, x, y)
    assert ok, f"max error {err}, {share:.3g}x the bound"


def test_f32_random_models_within_tolerance(tmp_path):
    rng = np.random.default_rng(5)
    for i in range(4):
        spec = random_spec(rng, max_layers=4, max_dim=7, max_dilation=7)
        model = random_model(spec, seed=i)
        x = _x(model, 3000, i)
        y, _ = run_host(build_host(generate(model, "f32"), tmp_path / str(i)), x)
        ok, err, share = f32_close(model, x, y)
        assert ok, f"model {i}: max error {err}, {share:.3g}x the bound"


def test_mirror_matches_c_call_for_call(tmp_path):
    from mcu.mirror import calls_per_sample, check_trace, mirror_f32

    model = random_model("mcu", seed=22)
    x = _x(model, 500, 2)
    y, trace = run_host(build_host(generate(model, "f32", style="cmsis"), tmp_path, trace=True), x, trace=True)
    my, per_sample, flat = mirror_f32(model, x)
    # mcu: 9 layers, 8 with ReLU -> mat_mult + add (+ clip) = 26 calls per sample
    assert len(per_sample[0]) == 26 == calls_per_sample(model)
    calls, worst = check_trace(model, x, trace)
    assert calls == 26 * len(x)
    # the free-running mirror and the C each stay inside the derived bound
    for out in (y, my):
        ok, err, share = f32_close(model, x, out)
        assert ok, f"{err}, {share:.3g}x the bound"


def test_mirror_alone_tracks_float_reference():
    from mcu.mirror import mirror_f32

    model = random_model("fpga_po2", seed=23)
    x = _x(model, 300, 3)
    y, _, _ = mirror_f32(model, x)
    ok, err, share = f32_close(model, x, y)
    assert ok, (err, share)


def test_mirror_detects_a_different_program():
    from mcu.mirror import check_trace, mirror_f32

    model = random_model("mcu", seed=24)
    x = _x(model, 5, 0)
    _, _, flat = mirror_f32(model, x)
    check_trace(model, x, flat)
    bad = [a.copy() for a in flat]
    bad[7] = bad[7] + np.float32(1e-3)
    with pytest.raises(NnhdlError, match="call 7"):
        check_trace(model, x, bad)
    with pytest.raises(NnhdlError, match="traced calls"):
        check_trace(model, x, flat[:-1])


def _one_lsb_off(model, what: str):
    """A copy of ``model`` with one real error in its last layer (which has no ReLU to hide it)."""
    wrong = copy.deepcopy(model)
    last = wrong.layers[-1]
    if what == "weight":
        last.weight[-1, 0, 0] += 1 if last.weight[-1, 0, 0] < model.qformat.max_int else -1
    elif what == "bias":
        last.bias[0] += 1 if last.bias[0] < model.qformat.max_int else -1
    elif what == "swapped weights":
        w = last.weight
        w[-1, 0, 0], w[-1, 1, 0] = w[-1, 1, 0].copy(), w[-1, 0, 0].copy()
        if w[-1, 0, 0] == w[-1, 1, 0]:
            w[-1, 0, 0] += 1
    return wrong


WRONG = ["weight", "bias", "swapped weights"]


@pytest.mark.parametrize("what", WRONG)
def test_unrolled_checks_refuse_a_wrong_program(what, tmp_path):
    """The C of a model one LSB off is refused by the exact emulation check and by the error bound."""
    from mcu.check import _equal_to_emulation

    model = random_model("mcu", seed=27)
    x = _x(model, 2000, 5)
    y, _ = run_host(build_host(generate(_one_lsb_off(model, what), "f32"), tmp_path), x)
    with pytest.raises(NnhdlError, match="differs from the IEEE float32 emulation"):
        _equal_to_emulation(model, x, y, "host build")
    if what != "swapped weights":  # a swap of two weights moves the output by their difference times one input
        ok, err, share = f32_close(model, x, y)
        assert not ok, f"a one-LSB error passed the bound: {err}, {share:.3g}x the bound"


@pytest.mark.parametrize("what", WRONG + ["swapped call"])
def test_trace_check_refuses_a_wrong_program(what, tmp_path):
    from mcu.mirror import check_trace

    model = random_model("mcu", seed=28)
    x = _x(model, 300, 6)
    built = model if what == "swapped call" else _one_lsb_off(model, what)
    _, trace = run_host(build_host(generate(built, "f32", style="cmsis"), tmp_path, trace=True), x, trace=True)
    if what == "swapped call":  # sample 3's mat_mult and add results of layer 0 trade places
        i = 3 * 26
        trace[i], trace[i + 1] = trace[i + 1], trace[i]
    with pytest.raises(NnhdlError, match=r"call \d+ \(arm_"):
        check_trace(model, x, trace)


def test_unrolled_equals_its_ieee_emulation_on_random_models(tmp_path):
    from mcu.mirror import emulate_unrolled_f32

    rng = np.random.default_rng(29)
    for i in range(4):
        spec = random_spec(rng, max_layers=4, max_dim=7, max_dilation=7)
        model = random_model(spec, seed=40 + i, extreme=i % 2 == 1)
        x = _x(model, 2000, i)
        for block in (0, 3):
            y, _ = run_host(build_host(generate(model, "f32", block=block), tmp_path / f"{i}-{block}"), x)
            assert np.array_equal(y.view(np.uint32), emulate_unrolled_f32(model, x).view(np.uint32)), (i, block)


def _f32_round(v: Fraction) -> np.float32:
    """The float32 nearest to ``v`` (ties to even), found by exact comparison."""
    r = np.float32(float(v))
    best = None
    for c in (np.nextafter(r, np.float32(-np.inf)), r, np.nextafter(r, np.float32(np.inf))):
        key = (abs(Fraction(float(c)) - v), int(np.array(c).view(np.uint32)) & 1)
        if best is None or key < best[0]:
            best = (key, c)
    return best[1]


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False, min_value=-2.0 ** 50, max_value=2.0 ** 50)


# (1 + 2**-12)**2 = 1 + 2**-11 + 2**-24 sits exactly halfway between two float32
# values, so a tiny c decides the rounding that float64 alone would lose.
@example(1 + 2.0 ** -12, 1 + 2.0 ** -12, 2.0 ** -80, 0)
@example(1 + 2.0 ** -12, 1 + 2.0 ** -12, -(2.0 ** -80), 0)
@example(1 + 2.0 ** -12, 1 + 2.0 ** -12, 0.0, 0)
@example(-(1 + 3 * 2.0 ** -12), 1 + 2.0 ** -12, 2.0 ** -90, 0)
@settings(max_examples=400, deadline=None)
@given(finite32, finite32, finite32, st.integers(0, 2))
def test_fma_f32_is_correctly_rounded(a, b, c, mode):
    from mcu.mirror import fma_f32

    a, b = np.float32(a), np.float32(b)
    if mode:  # aim at the hard cases: heavy cancellation and exact float32 midpoints plus a tail
        c = np.float32(-(float(a) * float(b))) + np.float32(c) * np.float32(2.0 ** -30 if mode == 1 else 0)
    c = np.float32(c)
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    got = fma_f32(np.array([a]), np.array([b]), np.array([c]))[0]
    want = _f32_round(exact)
    assert got == want or (got == 0 and want == 0), (a, b, c, got, want)


def _float32_in_order(model, x, order):
    """An independent float32 evaluation summing each dot product in ``order`` (no fma)."""
    h = np.asarray(x, np.float32)
    for n, layer in enumerate(model.layers):
        from mcu.emit_f32 import float_weights
        from nnhdl.reference import tap_history

        w, b = float_weights(model, n)
        g = tap_history(h, layer).reshape(len(h), -1).astype(np.float32)
        idx = list(range(layer.taps))
        idx = idx[::-1] if order == "reversed" else idx
        acc = np.zeros((len(h), layer.out_dim), np.float32)
        for j in idx:
            acc = (acc + (g[:, j : j + 1] * w[j][None, :]).astype(np.float32)).astype(np.float32)
        acc = (acc + b).astype(np.float32)
        if layer.activation == "relu":
            acc = np.maximum(acc, np.float32(0))
            if layer.relu_max is not None:
                acc = np.minimum(acc, np.float32(layer.relu_max / model.qformat.scale))
        h = acc
    return h


@pytest.mark.parametrize("order", ["forward", "reversed"])
def test_float32_bound_holds_for_any_summation_order(order):
    """The derived bound covers float32 programs it was not written for (other orders, no fma)."""
    rng = np.random.default_rng(31)
    for i in range(6):
        spec = random_spec(rng, max_layers=5, max_dim=9, max_dilation=9)
        model = random_model(spec, seed=60 + i, extreme=i % 3 == 0)
        x = _x(model, 1500, i)
        ref, bound = evaluate_float_bound(model, x.astype(np.float64), FLOAT32_UNIT_ROUNDOFF)
        y = _float32_in_order(model, x, order)
        assert np.all(np.abs(y - ref) <= bound), (i, float(np.max(np.abs(y - ref) / np.maximum(bound, 1e-300))))
        assert np.array_equal(ref, evaluate_float(model, x.astype(np.float64)))


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
