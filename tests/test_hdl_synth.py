"""Real yosys synth_ecp5 and nextpnr-ecp5 (YoWASP) on small networks."""

from __future__ import annotations

import json

import pytest

from nnhdl.cli import main
from nnhdl.configs import LayerSpec, NetworkSpec, random_model
from nnhdl.synth import synthesise


@pytest.fixture()
def build_dir(tmp_path):
    # pytest's basetemp is inside the worktree (YoWASP cannot see /tmp)
    assert not str(tmp_path.resolve()).startswith("/tmp/")
    return tmp_path


def test_po2_layer_has_no_multiplier_and_qb_layer_has_one_per_lane(build_dir):
    spec = NetworkSpec("t", 3, (LayerSpec(2, 3, 4, "po2", "relu"), LayerSpec(1, 1, 2, "qb", "none")))
    model = random_model(spec, seed=0)
    res = synthesise(model, [6, 2], build_dir / "a")
    # the po2 layer has 6 shift lanes and no MULT18X18D; the qb layer has its 2 lanes
    assert res.cells.get("MULT18X18D", 0) == 2
    spec = NetworkSpec("t", 3, (LayerSpec(2, 3, 4, "po2", "relu"),))
    res = synthesise(random_model(spec, seed=0), [6], build_dir / "b")
    assert res.cells.get("MULT18X18D", 0) == 0
    assert res.cells["LUT4"] > 0


def test_synth_cli_with_place_and_route(build_dir, capsys):
    spec = NetworkSpec("small", 2, (LayerSpec(2, 3, 3, "qb", "relu"), LayerSpec(1, 1, 2, "po2", "none")))
    path = build_dir / "small.npz"
    random_model(spec, seed=1).save(path)
    out_json = build_dir / "synth.json"
    assert main(["synth", str(path), "--pnr", "--build-dir", str(build_dir / "pnr"), "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "MULT18X18D" in text and "Fmax" in text
    figures = json.loads(out_json.read_text())
    assert figures["cells"]["MULT18X18D"] == 2
    assert 20 < figures["fmax_mhz"] < 500
    assert figures["utilisation"]["TRELLIS_COMB"]["available"] == 83640
