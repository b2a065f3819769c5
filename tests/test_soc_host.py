"""Host driver (load-weights / status) against the SoC itself, and a mock for what it cannot do.

The real client (``python -m boards.pmod load-weights/status``) talks to the
whole SoC in Verilator (soc.board_sim) through the simulated UART and the real
UARTBone gateware, while audio streams through the simulated codec pins.

``FakeBoardBus`` (a Python model of soc.litex_soc._NetworkCSRs' register
semantics) stays only for faults the simulated SoC cannot produce: a shadow RAM
that reads back wrong, and a bank that never switches.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nnhdl.configs import LayerSpec, NetworkSpec, random_model
from nnhdl.errors import NnhdlError
from soc.host import Board, CSRMap, describe_mismatch, load_weights
from soc.registers import REGISTERS
from boards.pmod import main as pmod_main
from soc.board_sim import BoardSim, build_sim, codec_adc, uart_upload_bits, write_board_files
from soc.build import BuildOptions
from tests import pmod_verilator
from tests.board_sim_helpers import check_one_switch, parse_status, shared_cache, uartbone_commands, uartbone_frames
from tests.soc_helpers import small_model

NAMES = [(r.name, r.words) for r in REGISTERS]  # the csr.csv rows (tests/test_soc_registers.py)


def csr_map():
    regs, addr = {}, 0x2000
    for name, n in NAMES:
        regs["nn_" + name] = (addr, n)
        addr += 4 * n
    return CSRMap(regs)


class FakeBoardBus:
    def __init__(self, model, csrs, *, corrupt_at=None, stuck_bank=False):
        self.by_addr = {}
        for name, (a, n) in csrs.regs.items():
            for i in range(n):
                self.by_addr[a + 4 * i] = (name[3:], i, n)
        self.regs = {name[3:]: 0 for name in csrs.regs}
        self.regs.update(model_id=model.model_id(), shape_id=model.shape_id(), n_weights=model.params)
        self.shadow = np.zeros(model.params, np.int64)
        self.corrupt_at, self.stuck_bank = corrupt_at, stuck_bank
        self.writes_to_data = 0

    def _word(self, name, i, n):
        return (self.regs[name] >> (32 * (n - 1 - i))) & 0xFFFFFFFF

    def read(self, addr, length=None):
        name, i, n = self.by_addr[addr]
        if name == "weight_readback":
            v = int(self.shadow[self.regs["weight_addr"]])
            return v ^ 1 if self.regs["weight_addr"] == self.corrupt_at else v
        return self._word(name, i, n)

    def write(self, addr, data, burst="incr"):
        name, i, n = self.by_addr[addr]
        values = data if isinstance(data, list) else [data]
        assert burst == "fixed" or len(values) == 1
        for v in values:
            if name == "weight_data":
                self.shadow[self.regs["weight_addr"]] = v & 0xFFFF
                self.regs["weight_addr"] += 1
                self.writes_to_data += 1
            elif name == "pulse":
                if v & 1 and not self.stuck_bank:
                    self.regs["active_bank"] ^= 1
            else:
                shift = 32 * (n - 1 - i)
                self.regs[name] = (self.regs[name] & ~(0xFFFFFFFF << shift)) | ((v & 0xFFFFFFFF) << shift)


def test_readback_mismatch_keeps_old_bank():
    """Mock: a shadow RAM that reads back wrong cannot be made in the (correct) simulated SoC."""
    old, new = small_model(1), small_model(2)
    csrs = csr_map()
    bus = FakeBoardBus(old, csrs, corrupt_at=5)
    with pytest.raises(NnhdlError, match="read-back mismatch at 1 addresses \\(first 5\\); bank not switched"):
        load_weights(Board(bus, csrs), new)
    assert bus.regs["active_bank"] == 0 and bus.regs["model_id"] == old.model_id()


def test_bank_that_never_switches():
    """Mock: in the simulated SoC audio always runs, so the bank always switches."""
    old, new = small_model(1), small_model(2)
    csrs = csr_map()
    with pytest.raises(NnhdlError, match="did not switch"):
        load_weights(Board(FakeBoardBus(old, csrs, stuck_bank=True), csrs), new)


def test_describe_mismatch_names_the_field():
    old = small_model(1)
    other = random_model(NetworkSpec("o", 4, (LayerSpec(3, 1, 4, "qb", "relu"), LayerSpec(2, 3, 3, "qb", "none"))), 0)
    assert describe_mismatch(old.hardware_manifest(), other) == "layer 1 dilation is 3 but the bitstream was built for 2"
    assert "input_dim" in describe_mismatch(old.hardware_manifest(), random_model(
        NetworkSpec("i", 3, (LayerSpec(1, 1, 3, "qb", "none"),)), 0))


def test_csr_csv_errors(tmp_path):
    with pytest.raises(NnhdlError, match="no csr.csv"):
        CSRMap.load(tmp_path / "csr.csv")
    (tmp_path / "csr.csv").write_text("csr_register,ctrl_reset,0xf0000000,1,rw\n")
    with pytest.raises(NnhdlError, match="no nnhdl registers"):
        CSRMap.load(tmp_path / "csr.csv")
    (tmp_path / "csr.csv").write_text("csr_register,nn_shape_id,0xf0000800,2,ro\n")
    assert CSRMap.load(tmp_path / "csr.csv").regs["nn_shape_id"] == (0xF0000800, 2)


# ---- the real client against the simulated SoC (soc.board_sim), audio streaming meanwhile

ROOT = Path(__file__).resolve().parents[1]
RATE = 48000


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """The small model's SoC, compiled once; its csr.csv/report.json in a build folder; model files."""
    if not pmod_verilator.available():
        pytest.skip("verilator not installed (CI installs it)")
    mp = pytest.MonkeyPatch()
    mp.setenv("NNHDL_CACHE", shared_cache(tmp_path_factory))
    d = tmp_path_factory.mktemp("board")
    old, new = small_model(1), small_model(2)
    other = random_model(NetworkSpec("o", 4, (LayerSpec(3, 1, 4, "qb", "relu"), LayerSpec(2, 3, 3, "qb", "none"))), 0)
    for name, m in (("old", old), ("new", new), ("other", other)):
        m.save(d / f"{name}.npz")
    sim = build_sim(BuildOptions(model=old, sample_rate=RATE), log=lambda s: None)
    write_board_files(sim, d / "b")
    yield {"sim": sim, "dir": d, "bdir": str(d / "b"), "old": old, "new": new}
    mp.undo()


def _streaming_counts(n=4000, seed=7):
    """Input jacks 0..2 (random levels that make the two models differ), jack 3 silent; played in a loop."""
    c = np.random.default_rng(seed).integers(-30000, 30000, size=(n, 4))
    c[:, 3] = 0
    return c


def _status(bdir, port, capsys):
    assert pmod_main(["status", "--port", f"socket://localhost:{port}", "--build-dir", bdir]) == 0
    return parse_status(capsys.readouterr().out)


def _played(counts, frames):
    return np.tile(counts, (frames // len(counts) + 1, 1))[:frames]


def test_load_weights_switches_at_one_sample_boundary(board, tmp_path, capsys):
    old, new, bdir = board["old"], board["new"], board["bdir"]
    counts = _streaming_counts()
    with BoardSim(board["sim"], tmp_path / "run", adc=codec_adc(counts), loop=True, port=0) as run:
        before = _status(bdir, run.port, capsys)
        assert pmod_main(["load-weights", "--model", str(board["dir"] / "new.npz"), "--port",
                          f"socket://localhost:{run.port}", "--build-dir", bdir]) == 0
        out = capsys.readouterr().out
        after = _status(bdir, run.port, capsys)
    new_id = int(new.fingerprint()[:16], 16)
    assert f"loaded {new.params} weights; bank 1 active; model id {new_id:016x}" in out
    assert before["model_id"] == int(old.fingerprint()[:16], 16) and before["active_bank"] == 0
    assert before["n_weights"] == old.params and before["samples"] > 0
    assert after["model_id"] == new_id and after["active_bank"] == 1
    assert after["overruns"] == 0 and after["samples"] > before["samples"]
    dac = run.dac()
    swap = check_one_switch(dac, _played(counts, len(dac)), old, new, board["sim"].latency_frames)
    assert before["samples"] < swap < after["samples"]
    # the benchmark's upload time comes from this bit count: check it against the wire
    sent = run.uart_log()[1]
    answers = sum(n for cmd, n in uartbone_frames(sent) if cmd == 2)
    assert 10 * (len(sent) + 4 * answers) == uart_upload_bits(new.params)


def test_other_shapes_are_refused_before_anything_is_written(board, tmp_path, capsys):
    with BoardSim(board["sim"], tmp_path / "run", adc=codec_adc(_streaming_counts()), loop=True, port=0) as run:
        rc = pmod_main(["load-weights", "--model", str(board["dir"] / "other.npz"), "--port",
                        f"socket://localhost:{run.port}", "--build-dir", board["bdir"]])
        err = capsys.readouterr().err.strip().splitlines()
        st = _status(board["bdir"], run.port, capsys)
    assert rc == 2 and err == ["boards.pmod: error: cannot load these weights without resynthesis: "
                               "layer 1 dilation is 3 but the bitstream was built for 2"]
    first, second = run.uart_log()[:2]  # the refused client's bytes, then status's
    assert first and set(uartbone_commands(first)) == {2}  # reads only
    assert st["active_bank"] == 0 and st["model_id"] == board["sim"].model_id


def test_killed_upload_leaves_the_active_bank_and_a_retry_succeeds(board, tmp_path, capsys):
    old, new, bdir = board["old"], board["new"], board["bdir"]
    counts = _streaming_counts(seed=8)
    with BoardSim(board["sim"], tmp_path / "run", adc=codec_adc(counts), loop=True, port=0) as run:
        url = f"socket://localhost:{run.port}"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        client = subprocess.Popen([sys.executable, "-m", "boards.pmod", "load-weights", "--model",
                                   str(board["dir"] / "new.npz"), "--port", url, "--build-dir", bdir],
                                  cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for line in client.stdout:  # load-weights reports its progress on stdout
            if line.startswith("verifying"):
                break
        time.sleep(0.5)  # into the read-back of the inactive bank
        client.kill()
        client.wait()
        # UARTBone drops a half-received command after 100 ms (simulated): let that pass
        start = len(run.dac())
        while len(run.dac()) < start + RATE // 8 + 2 * RATE // 100:
            assert run.proc.poll() is None
            time.sleep(0.5)
        mid = _status(bdir, run.port, capsys)
        assert pmod_main(["load-weights", "--model", str(board["dir"] / "new.npz"), "--port", url,
                          "--build-dir", bdir]) == 0
        assert "bank 1 active" in capsys.readouterr().out
        after = _status(bdir, run.port, capsys)
    killed = run.uart_log()[0]
    assert 3 in uartbone_commands(killed)  # the killed client had written weights (fixed-address burst)
    assert mid["active_bank"] == 0 and mid["model_id"] == int(old.fingerprint()[:16], 16)
    assert after["active_bank"] == 1 and after["model_id"] == int(new.fingerprint()[:16], 16)
    assert after["overruns"] == 0
    dac = run.dac()
    swap = check_one_switch(dac, _played(counts, len(dac)), old, new, board["sim"].latency_frames)
    assert swap > mid["samples"]  # the old model kept playing until the retry
