"""Real yosys synth_ecp5 and nextpnr-ecp5 (YoWASP) on small networks."""

from __future__ import annotations

import json

import pytest

from nnhdl.cli import main
from nnhdl.errors import NnhdlError
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


def test_dsp_cells_hold_the_operand_and_product_registers(build_dir):
    """With ECP5_MULT18 the lanes' operand and product registers are the MULT18X18D's own, not fabric
    flip-flops (yosys packs none into the cell by itself): the same multipliers, >= 64 fewer FFs per lane."""
    from nnhdl.hdl.mult import ECP5_MULT18, FABRIC

    spec = NetworkSpec("t", 3, (LayerSpec(4, 2, 6, "qb", "relu"),))
    model = random_model(spec, seed=1)
    dsp = synthesise(model, [6], build_dir / "dsp", multiplier=ECP5_MULT18).cells
    fabric = synthesise(model, [6], build_dir / "fabric", multiplier=FABRIC).cells
    assert dsp["MULT18X18D"] == fabric["MULT18X18D"] == 6
    # per lane: x and w (16 bits each) and the 32-bit product
    assert fabric["TRELLIS_FF"] - dsp["TRELLIS_FF"] >= 6 * (16 + 16 + 32)


@pytest.mark.parametrize("banks,dp16kd", [(1, 6), (2, 10)])
def test_block_ram_and_multipliers_are_the_plans_exactly(build_dir, banks, dp16kd):
    """yosys synth_ecp5 maps exactly the DP16KD and MULT18X18D the cost model predicts, on a network with a
    skewed weight store, a folded cache in block RAM, biases and po2 codes in LUT RAM."""
    from nnhdl.hdl.schedule import schedule

    spec = NetworkSpec("odd", 12, (LayerSpec(4, 40, 64, "qb", "relu"), LayerSpec(1, 1, 3, "po2", "relu"),
                                   LayerSpec(2, 1, 2, "qb", "none")))
    model = random_model(spec, seed=3)
    lanes = [5, 1, 1]
    predicted = schedule(model, lanes, banks)
    # by hand: layer 0's 48 taps x 64 outputs on 5 lanes are 640 steps (1280 with two banks) of three
    # 36-bit columns (two 16-bit weights each) laid end to end in 512-word blocks: 4 (8); its 121 x 12
    # cache entries fold into 3 words of 64 bits (363 x 64: 2 blocks); biases and the rest in LUT RAM
    assert [c.fold for c in predicted.layers][0] == 3
    assert predicted.total("dp16kd") == dp16kd and predicted.total("mult18") == 6
    res = synthesise(model, lanes, build_dir / f"b{banks}", banks=banks)
    assert res.cells.get("DP16KD", 0) == dp16kd
    assert res.cells.get("MULT18X18D", 0) == 6


def test_synth_cli_with_place_and_route(build_dir, capsys):
    """The planner's MULT18X18D and DP16KD counts are nextpnr's, exactly (weights and a cache in block
    RAM, a small cache, biases and po2 codes in LUT RAM)."""
    from nnhdl.hdl.planner import plan

    spec = NetworkSpec("small", 4, (LayerSpec(4, 8, 24, "qb", "relu"), LayerSpec(1, 1, 3, "po2", "none"),
                                    LayerSpec(2, 1, 2, "qb", "none")))
    model = random_model(spec, seed=1)
    path = build_dir / "small.npz"
    model.save(path)
    p = plan(model, "ecpix5", sample_rate=48000)
    assert p.lanes == [1, 1, 1]
    out_json = build_dir / "synth.json"
    assert main(["synth", str(path), "--pnr", "--sample-rate", "48000", "--build-dir", str(build_dir / "pnr"),
                 "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "MULT18X18D" in text and "Fmax" in text
    figures = json.loads(out_json.read_text())
    # by hand: layer 0's 384 x 16-bit weights take 1 block (or 96 LUT-RAM cells, more than one block's
    # worth, 64); its 25 x 64-bit cache folds to 100 x 16 bits in 28 cells of LUT RAM, as does everything smaller
    assert p.schedule.total("dp16kd") == 1 and p.schedule.total("mult18") == 2
    assert figures["utilisation"]["DP16KD"]["used"] == 1
    assert figures["cells"]["MULT18X18D"] == 2
    assert 20 < figures["fmax_mhz"] < 500
    assert figures["utilisation"]["TRELLIS_COMB"]["available"] == 83640


def test_pnr_on_the_colorlight_i5_shows_each_stage(build_dir, capsys):
    """--board colorlight_i5 places on the LFE5U-25F; every tool stage is announced with its time."""
    spec = NetworkSpec("tiny", 2, (LayerSpec(2, 1, 2, "qb", "relu"),))
    path = build_dir / "tiny.npz"
    random_model(spec, seed=1).save(path)
    out_json = build_dir / "i5.json"
    assert main(["synth", str(path), "--pnr", "--board", "colorlight_i5", "--build-dir", str(build_dir / "i5"),
                 "--json", str(out_json)]) == 0
    err = capsys.readouterr().err
    for stage in ("yosys: synthesis done in", "nextpnr: placement", "nextpnr: routing", "ecppack: bitstream done"):
        assert stage in err, stage
    figures = json.loads(out_json.read_text())
    assert figures["utilisation"]["MULT18X18D"] == {"used": 1, "available": 28}
    assert figures["utilisation"]["TRELLIS_COMB"]["available"] == 24288


def test_fan_out_replicas_survive_synthesis(build_dir):
    """The tap register's enable and rotate registers are replicated per group of slots (nnhdl.hdl.fanout);
    yosys merges flip-flops with equal inputs, so without KEEP_REPLICAS the copies would collapse into one."""
    import subprocess

    from nnhdl.hdl.fanout import KEEP_REPLICAS
    from nnhdl.synth import _tool
    from nnhdl.yosys_recipes import RECIPES

    spec = NetworkSpec("t", 12, (LayerSpec(4, 1, 2, "qb", "none"),))  # 48 taps of 16 bits in 6 chains of 8
    model = random_model(spec, seed=2)
    synthesise(model, [6], build_dir / "r")
    # the taps: 2 chains (256 flip-flops) per copy, a tap_ce and a tap_rotate each; the cache's past taps:
    # K-1 = 3 past samples of 12 x 16 bits = 576 flip-flops, one shift-enable copy per 256 of them
    want = {"tap": 2 * 3, "cache_shift": 3}

    def replicas(before: str, name: str) -> int:
        script = (f"read_rtlil top.il; {before}; synth_ecp5 -top top -run begin:map_luts; "
                  f"tee -o replicas.txt select -count w:*replica_{name}* %ci1 t:TRELLIS_FF %i")
        subprocess.run([_tool("yosys"), "-q", "-p", script], cwd=build_dir / "r", check=True, capture_output=True)
        return int((build_dir / "r" / "replicas.txt").read_text().split()[0])

    for recipe in RECIPES:
        assert KEEP_REPLICAS in recipe.before
        for name, n in want.items():
            assert replicas(recipe.before, name) == n, (recipe.name, name)
    assert replicas("proc", "tap") < want["tap"]


def test_each_layer_keeps_its_own_weight_write_decoder(build_dir):
    """Two identical layers decode the shared weight-write bus into identical registers; merged, one copy
    would be routed to both layers (fpga_wide's critical path).  KEEP_REPLICAS keeps one decoder per layer."""
    import subprocess

    from nnhdl.synth import _tool
    from nnhdl.yosys_recipes import RECIPES

    spec = NetworkSpec("t", 2, (LayerSpec(2, 1, 3), LayerSpec(2, 2, 3), LayerSpec(2, 2, 3), LayerSpec(1, 1, 1, "qb", "none")))
    model = random_model(spec, seed=3)
    synthesise(model, [1, 2, 2, 1], build_dir / "l")  # layers 1 and 2: same shape, same lanes

    def decoder_ffs(before: str, layer: int) -> int:
        script = (f"read_rtlil top.il; {before}; synth_ecp5 -top top -run begin:map_luts; "
                  f"tee -o ffs.txt select -count w:*layer{layer}.*local_* %ci1 t:TRELLIS_FF %i")
        subprocess.run([_tool("yosys"), "-q", "-p", script], cwd=build_dir / "l", check=True, capture_output=True)
        return int((build_dir / "l" / "ffs.txt").read_text().split()[0])

    kept = [decoder_ffs(RECIPES[0].before, l) for l in (1, 2)]
    assert kept[0] > 0 and kept[0] == kept[1]
    merged = [decoder_ffs("proc", l) for l in (1, 2)]
    assert min(merged) < kept[0]  # without keep, one layer's decoder is (partly) the other's


def test_a_miswired_netlist_is_caught_and_the_next_recipe_used(build_dir, monkeypatch):
    """yosys 0.70's older XAIGER writer hands back two flip-flops driving one net for the netlist in the fixture
    (a real fault, YosysHQ/yosys#6237's kind): check -assert stops it, and synthesis goes on with the next recipe.

    The fixture is the RTLIL nnhdl generated for a 4-channel K=2 layer (seed 2, 6 lanes) before the activation
    cache replicated its shift enable; today's RTL for that network no longer happens to trip the fault, and
    the fault is a property of the netlist, so the netlist is committed rather than regenerated."""
    import dataclasses
    import gzip
    from pathlib import Path

    import nnhdl.synth
    from nnhdl.hdl.fanout import KEEP_REPLICAS
    from nnhdl.synth import synthesise_rtlil
    from nnhdl.yosys_recipes import RECIPES

    older, default = RECIPES[1], RECIPES[0]
    assert "abc9.xaiger" in older.before and "xaiger" not in default.before
    # the fault shows when only the tap replicas are kept (today's recipe keeps the layers' write decoders too,
    # which happens to dodge it for this netlist); the script is otherwise the older-writer recipe
    older = dataclasses.replace(older, before=older.before.replace(
        KEEP_REPLICAS, "proc; setattr -set keep 1 w:replica_* %ci1 c:* %i"))
    assert older.before != RECIPES[1].before
    netlist = gzip.decompress((Path(__file__).parent / "fixtures" / "xaiger_fault_top.il.gz").read_bytes())
    for sub in ("only", "both"):
        (build_dir / sub).mkdir(parents=True)
        (build_dir / sub / "top.il").write_bytes(netlist)
    monkeypatch.setattr(nnhdl.synth, "RECIPES", (older,))
    with pytest.raises(NnhdlError, match="yosys failed"):
        synthesise_rtlil(build_dir / "only")
    assert "conflicting drivers" in (build_dir / "only" / "yosys.log").read_text()
    monkeypatch.setattr(nnhdl.synth, "RECIPES", (older, default))
    res = synthesise_rtlil(build_dir / "both")
    assert res.mapper == default.name and res.cells["MULT18X18D"] == 6
