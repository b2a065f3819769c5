"""nnhdl.explore: the search-space file (first landing)."""

from __future__ import annotations

import pytest

from nnhdl.errors import NnhdlError
from nnhdl.explore.space import network_config, parse_space, point_id

TINY = """
[explore]
strategy = "grid"
[budget]
steps = 5
[model]
layers = [1, 2]
filters = 4
kernel_size = 2
dilation_growth = 2
[hardware]
board = ["ecpix5", "daisy"]
sample_rate = 48000
clock_mhz = [0.0, 100.0]
"""


def test_grid_merges_daisy_clocks():
    space = parse_space(TINY)
    grid = space.grid()
    # 2 layer counts x (ecpix5 at two clocks + daisy at its one clock) = 6 points, by hand
    assert len(grid) == 6
    assert len({point_id(k) for k in grid}) == 6
    assert {k["clock_mhz"] for k in grid if k["board"] == "daisy"} == {480.0}


def test_network_config_shape():
    k = parse_space(TINY).grid()[-1]
    cfg = network_config(k, 4, 1, "p")
    assert [l["dilation"] for l in cfg["layers"]] == [1, 2, 1][: k["layers"]] + [1]
    assert cfg["layers"][-1]["out_dim"] == 1 and cfg["qformat"] == {"width": 16, "frac": 12}


@pytest.mark.parametrize("extra,key", [
    ("[model]\nbogus = 1\n", "model.bogus"),
    ("[budget]\nsteps = 0\n", "budget.steps"),
    ("[model]\npo2 = \"all\"\nqformat = \"Q1.15\"\n", "model.qformat"),
    ("[hardware]\nboard = \"nexys\"\n", "hardware.board"),
])
def test_bad_space_names_the_key(extra, key):
    with pytest.raises(NnhdlError) as e:
        parse_space(extra, "s.toml")
    msg = str(e.value)
    assert msg.startswith(f"s.toml: {key}") and "\n" not in msg


def test_random_strategy_is_seeded():
    from nnhdl.explore.strategies import random_points

    space = parse_space(TINY)
    a, b = random_points(space, 3, 7), random_points(space, 3, 7)
    assert a == b and len({point_id(k) for k in a}) == 3
    assert any(random_points(space, 3, s) != a for s in range(8, 20))
    assert len(random_points(space, 100, 0)) == 6


from hypothesis import given, strategies as st  # noqa: E402


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=30))
def test_pareto_front_equals_brute_force_dominance(pts):
    from nnhdl.explore.front import pareto_front

    pts = [(float(e), float(c)) for e, c in pts]
    brute = {i for i, p in enumerate(pts)
             if not any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in pts)}
    assert set(pareto_front(pts)) == brute
