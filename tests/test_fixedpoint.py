"""Property tests of the fixed-point rules (DESIGN §1) against Python's
arbitrary-precision integers, which cannot wrap."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnhdl.fixedpoint import (
    Q4_12,
    QFormat,
    accumulate,
    accumulator_width,
    activate,
    is_po2,
    po2_decode,
    po2_encode,
    po2_product,
    quantize_po2,
    requantize,
)

formats = st.builds(
    lambda w, f: QFormat(w, f % w),
    st.integers(2, 24),
    st.integers(0, 23),
)


def test_default_is_q4_12() -> None:
    assert (Q4_12.width, Q4_12.frac, Q4_12.int_bits) == (16, 12, 4)
    assert (Q4_12.min_int, Q4_12.max_int) == (-32768, 32767)
    assert str(Q4_12) == "Q4.12"


@pytest.mark.parametrize("width,frac", [(1, 0), (25, 12), (16, 16), (16, -1), (8, 9)])
def test_unsupported_formats_are_refused(width: int, frac: int) -> None:
    with pytest.raises(ValueError):
        QFormat(width, frac)


@given(formats, st.floats(-1e6, 1e6, allow_nan=False))
def test_quantize_rounds_half_up_and_saturates(fmt: QFormat, x: float) -> None:
    m = int(fmt.quantize(x))
    exact = x * 2**fmt.frac
    if exact >= fmt.max_int:
        assert m == fmt.max_int
    elif exact < fmt.min_int - 0.5:
        assert m == fmt.min_int
    else:
        # nearest, ties up
        assert m - 0.5 <= exact < m + 0.5


@given(formats, st.integers(-(2**62), 2**62))
def test_requantize_floor_and_nearest(fmt: QFormat, acc: int) -> None:
    lo, hi = fmt.min_int, fmt.max_int
    floor = acc // 2**fmt.frac
    nearest = (acc + (2 ** (fmt.frac - 1) if fmt.frac else 0)) // 2**fmt.frac
    assert int(requantize(np.int64(acc), fmt, "floor")) == min(max(floor, lo), hi)
    assert int(requantize(np.int64(acc), fmt, "nearest")) == min(max(nearest, lo), hi)


def test_floor_and_nearest_differ_on_negative_values() -> None:
    # -0.5 LSB: floor goes down to -1, nearest rounds half up to 0;
    # truncation toward zero (fxpmath's default 'trunc') would give 0 for floor: the old bug.
    half = 1 << (Q4_12.frac - 1)
    assert int(requantize(np.int64(-half), Q4_12, "floor")) == -1
    assert int(requantize(np.int64(-half), Q4_12, "nearest")) == 0
    assert int(requantize(np.int64(-half - 1), Q4_12, "nearest")) == -1
    assert int(requantize(np.int64(-1), Q4_12, "floor")) == -1


def test_requantize_saturates_at_both_ends() -> None:
    big = np.int64(1) << 40
    assert int(requantize(big, Q4_12)) == 32767
    assert int(requantize(-big, Q4_12)) == -32768
    assert int(requantize(np.int64(32768 << 12), Q4_12)) == 32767
    assert int(requantize(np.int64(-32768 << 12), Q4_12)) == -32768
    assert int(requantize(np.int64((-32769) << 12), Q4_12)) == -32768


@given(st.integers(-(2**15), 2**15 - 1), st.one_of(st.none(), st.integers(0, 2**15 - 1)))
def test_activations(y: int, relu_max: int | None) -> None:
    assert int(activate(np.int64(y), "none")) == y
    expected = max(y, 0) if relu_max is None else min(max(y, 0), relu_max)
    assert int(activate(np.int64(y), "relu", relu_max)) == expected


def _all_po2(fmt: QFormat) -> list[int]:
    values = {0}
    for k in range(fmt.frac + 1):
        for s in (1, -1):
            m = s * 2 ** (fmt.frac - k)
            if fmt.min_int <= m <= fmt.max_int:
                values.add(m)
    return sorted(values)


@pytest.mark.parametrize("fmt", [Q4_12, QFormat(16, 15), QFormat(8, 4), QFormat(12, 9), QFormat(2, 0)])
def test_is_po2_matches_enumeration(fmt: QFormat) -> None:
    everything = np.arange(fmt.min_int, fmt.max_int + 1)
    expected = np.isin(everything, _all_po2(fmt))
    assert np.array_equal(is_po2(everything, fmt), expected)


@given(formats, st.data())
def test_po2_products_are_exact_shifts(fmt: QFormat, data: st.DataObject) -> None:
    w = np.array(data.draw(st.lists(st.sampled_from(_all_po2(fmt)), min_size=1, max_size=20)))
    x = np.array(data.draw(st.lists(st.integers(fmt.min_int, fmt.max_int), min_size=len(w), max_size=len(w))))
    sign, shift, zero = po2_encode(w, fmt)
    assert np.array_equal(po2_decode(sign, shift, zero), w)
    assert np.all((shift >= 0) & (shift <= fmt.frac))
    products = po2_product(x, sign, shift, zero)
    assert [int(p) for p in products] == [int(a) * int(b) for a, b in zip(x, w)]


def test_po2_encode_refuses_non_powers() -> None:
    with pytest.raises(ValueError, match="power-of-two"):
        po2_encode(np.array([4096, 3]), Q4_12)
    with pytest.raises(ValueError):
        po2_encode(np.array([8192]), Q4_12)  # 2.0 is not in [2**-F, 1]


@given(formats, st.floats(-4.0, 4.0, allow_nan=False))
def test_quantize_po2_picks_the_nearest_candidate(fmt: QFormat, x: float) -> None:
    m = int(quantize_po2(x, fmt))
    candidates = _all_po2(fmt)
    assert m in candidates
    err = abs(x * fmt.scale - m)
    best = min(abs(x * fmt.scale - c) for c in candidates)
    assert err <= best + 1e-9 * fmt.scale


def _python_accumulate(taps: np.ndarray, weight: np.ndarray, bias: np.ndarray, frac: int) -> list[int]:
    k, i, o = weight.shape
    return [
        sum(int(taps[kk, ii]) * int(weight[kk, ii, oo]) for kk, ii in itertools.product(range(k), range(i)))
        + (int(bias[oo]) << frac)
        for oo in range(o)
    ]


@pytest.mark.parametrize("fmt", [Q4_12, QFormat(24, 12), QFormat(24, 23)])
@pytest.mark.parametrize("extreme", ["min", "max", "mixed"])
def test_accumulator_never_wraps_at_in_dim_64_k_4(fmt: QFormat, extreme: str) -> None:
    k, i, o = 4, 64, 3
    if extreme == "min":
        taps = np.full((k, i), fmt.min_int)
        weight = np.full((k, i, o), fmt.min_int)
        bias = np.full(o, fmt.max_int)
    elif extreme == "max":
        taps = np.full((k, i), fmt.max_int)
        weight = np.full((k, i, o), fmt.max_int)
        bias = np.full(o, fmt.max_int)
    else:
        taps = np.full((k, i), fmt.min_int)
        weight = np.full((k, i, o), fmt.max_int)
        bias = np.full(o, fmt.min_int)
    acc = accumulate(taps, weight, bias, fmt)
    exact = _python_accumulate(taps, weight, bias, fmt.frac)
    assert [int(a) for a in acc] == exact
    bits = accumulator_width(fmt, k * i)
    assert all(-(2 ** (bits - 1)) <= e < 2 ** (bits - 1) for e in exact)


@settings(max_examples=50)
@given(formats, st.integers(1, 4), st.integers(1, 64), st.integers(1, 4), st.data())
def test_accumulate_equals_python_ints(fmt: QFormat, k: int, i: int, o: int, data: st.DataObject) -> None:
    ints = st.integers(fmt.min_int, fmt.max_int)
    taps = np.array(data.draw(st.lists(ints, min_size=k * i, max_size=k * i))).reshape(k, i)
    weight = np.array(data.draw(st.lists(ints, min_size=k * i * o, max_size=k * i * o))).reshape(k, i, o)
    bias = np.array(data.draw(st.lists(ints, min_size=o, max_size=o)))
    assert [int(a) for a in accumulate(taps, weight, bias, fmt)] == _python_accumulate(taps, weight, bias, fmt.frac)
