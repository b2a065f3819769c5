"""The board without the board: the bundled model's whole SoC in Verilator (soc.board_sim).

Audio goes in and out through the simulated codec pins and is compared with the
reference CLI at the exact latency (2 + D frames, soc.core); the I2C log with
DESIGN §6; the counters and ids are read by the real host CLI over the
simulated UART and the real UARTBone gateware.  48 kHz
keeps the cycle count down (one sample = 256 system clocks in both rates).
"""

import contextlib
import io
import json
import os
import socket
import time

import numpy as np
import pytest
from scipy.io import wavfile

from boards.pmod import main as pmod_main
from nnhdl.cli import main as nnhdl_main
from nnhdl.errors import NnhdlError
from nnhdl.model import Model
from nnhdl.reference import evaluate
from soc.board_sim import EEPROM_SERIAL, BoardSim, build_sim, codec_adc, demo_signal, write_board_files
from soc.build import BuildOptions, plan
from tests import pmod_verilator
from tests.board_sim_helpers import board_inputs, parse_status, shared_cache

pytestmark = pytest.mark.skipif(not pmod_verilator.available(), reason="verilator not installed (CI installs it)")

BUNDLED = os.path.join(os.path.dirname(__file__), "..", "nnhdl", "models", "fpga_qb.npz")
RATE = 48000

# Written straight from DESIGN §6 (not from soc/).
AK4619_48K = [0x37, 0xAE, 0x1C, 0x00, 0x22, 0x22, 0x30, 0x30, 0x30, 0x30, 0x22,
              0x55, 0x00, 0x06, 0x18, 0x18, 0x18, 0x18, 0x04, 0x05, 0x0A]
PCA9635 = [0x81, 0x01] + [0x00] * 16 + [0xFF, 0x00] + [0xAA] * 4


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("NNHDL_CACHE", shared_cache(tmp_path_factory))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def sim(cache):
    return build_sim(BuildOptions(model_path=BUNDLED, sample_rate=RATE), log=lambda s: None)


@pytest.fixture(scope="module")
def lag(sim):
    """Frames from an input to its answer, 2 + D, D written here from the plan's figures: the least D
    with latency + 8 (the MCLK margin) <= (D + 1) x 256.  fpga_qb's plan on MCLK takes a sample every
    210 cycles but needs 497 from input to output, so its answer leaves one frame later than f+2."""
    p = plan(BuildOptions(model_path=BUNDLED, sample_rate=RATE), log=lambda s: None)
    p.net._MustUse__silence = True  # figures only, never elaborated
    assert p.clocking == "mclk" and p.net.initiation_interval + 8 <= 256
    d = -(-(p.net.latency + 8) // 256) - 1
    assert d >= 1  # the whole SoC at a latency beyond one period
    assert sim.latency_frames == 2 + d
    return {"frames": 2 + d, "cycles": p.net.latency}


def test_wav_through_the_codec_pins_equals_the_reference_cli(sim, lag, tmp_path, capsys):
    """`boards.pmod sim` == `nnhdl run --target reference` on the same WAV, 2 + D samples later, every sample."""
    n = 3000
    rng = np.random.default_rng(4)
    t = np.arange(n)
    steps = np.repeat(rng.integers(-20000, 20000, size=(n // 250 + 1, 2)), 250, axis=0)[:n]
    wav = np.stack([np.round(18000 * np.sin(2 * np.pi * t / 173)) + rng.integers(-800, 800, n),
                    steps[:, 0], steps[:, 1], np.zeros(n)], axis=1).astype(np.int16)
    wav[5, 0] = -32768  # the codec cannot invert full scale: must still give the same mantissa
    wavfile.write(tmp_path / "in.wav", RATE, wav)
    assert nnhdl_main(["run", "--model", BUNDLED, "--target", "reference", "--input", str(tmp_path / "in.wav"),
                       "--output", str(tmp_path / "ref.wav")]) == 0
    assert pmod_main(["sim", "--model", BUNDLED, "--sample-rate", str(RATE), "--input", str(tmp_path / "in.wav"),
                      "--output", str(tmp_path / "out.wav"), "--uart-port", "0",
                      "--build-dir", str(tmp_path / "b")]) == 0
    k = lag["frames"]
    assert f"simulated {n + k} samples" in capsys.readouterr().out
    _, ref = wavfile.read(tmp_path / "ref.wav")
    rate, out = wavfile.read(tmp_path / "out.wav")
    assert rate == RATE and out.shape == (n + k, 4)
    np.testing.assert_array_equal(out[:k], 0)
    np.testing.assert_array_equal(out[k:, 0], ref[:, 0])
    np.testing.assert_array_equal(out[:, 1:], 0)  # only output jack 0 is driven (default channel map)
    assert np.ptp(ref[:, 0].astype(np.int64)) > 1000
    assert (tmp_path / "b" / "csr.csv").is_file()
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["latency_frames"] == k and report["delay_frames"] == k - 2


def test_latency_beyond_one_period_with_the_crossing(cache, tmp_path, capsys):
    """The whole SoC, clock crossing included, with a small random network at one lane on a 16 MHz
    system clock: a sample every 50 (+16) of 83 cycles, 91 (+16) from input to output, so D = 1 (the
    least D with 107 <= (D + 1) x 83) and jack 0 is the golden model's answer 3 frames later."""
    from nnhdl.hdl.network import Network
    from tests.soc_helpers import small_model

    model = small_model(4)
    model.save(tmp_path / "m.npz")
    net = Network(model, lanes=1, banks=2)
    net._MustUse__silence = True  # figures only
    budget = int(16e6 // 192000)
    assert net.initiation_interval + 16 <= budget < net.latency + 16 <= 2 * budget
    k = 3
    n = 1500
    rng = np.random.default_rng(6)
    t = np.arange(n)
    wav = np.stack([np.round(15000 * np.sin(2 * np.pi * t / 91)) + rng.integers(-500, 500, n),
                    np.repeat(rng.integers(-20000, 20000, n // 100 + 1), 100)[:n], np.full(n, -4000),
                    np.zeros(n)], axis=1).astype(np.int16)
    wavfile.write(tmp_path / "in.wav", 192000, wav)
    assert pmod_main(["sim", "--model", str(tmp_path / "m.npz"), "--sample-rate", "192000", "--sys-clock-mhz", "16",
                      "--lanes", "1", "--input", str(tmp_path / "in.wav"), "--output", str(tmp_path / "out.wav"),
                      "--uart-port", "0", "--build-dir", str(tmp_path / "b")]) == 0
    assert f"simulated {n + k} samples" in capsys.readouterr().out
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["clocking"] == "cdc" and report["latency_frames"] == k
    _, out = wavfile.read(tmp_path / "out.wav")
    want = np.clip(evaluate(model, board_inputs(wav.astype(np.int64), model.input_dim))[:, 0] * 4, -32768, 32767)
    np.testing.assert_array_equal(out[:k], 0)
    np.testing.assert_array_equal(out[k:, 0], want)
    assert np.ptp(want) > 1000


JACK = 0x0B  # input jack 2 unplugged
DEADLINE = 8.6e6 / 256  # frames: the sequencer waits 2 x 255 << 14 cycles around the codec reset (~0.7 s)


@pytest.fixture(scope="module")
def powered_up(sim, tmp_path_factory):
    """One run past the codec set-up and the first jack poll, then `boards.pmod status` over the UART."""
    d = tmp_path_factory.mktemp("powered_up")
    write_board_files(sim, d / "b")
    out = io.StringIO()
    with BoardSim(sim, d / "run", adc=codec_adc(demo_signal(RATE, 0.1)), loop=True, port=0, jack=JACK) as run:
        t0 = time.monotonic()
        while not any(e[:2] == ("read", 0x18) for e in run.i2c_log()):
            assert run.proc.poll() is None and time.monotonic() - t0 < 300, run.frames
            time.sleep(1)
        frames_before = len(run.dac())  # (the recording is flushed every second: a lower bound)
        with contextlib.redirect_stdout(out):
            rc = pmod_main(["status", "--port", f"socket://localhost:{run.port}", "--build-dir", str(d / "b")])
        log = run.i2c_log()
    assert rc == 0
    return {"status": parse_status(out.getvalue()), "log": log, "dac": run.dac(), "frames_before": frames_before}


def test_i2c_setup_and_status_over_the_uart(powered_up, lag):
    """Codec reset + set-up on the I2C models, then `boards.pmod status` over the simulated UART."""
    st, log = powered_up["status"], powered_up["log"]
    assert powered_up["frames_before"] > DEADLINE * 0.9
    model = Model.load(BUNDLED)
    assert st["model_id"] == int(model.fingerprint()[:16], 16)
    assert st["n_weights"] == model.params and st["active_bank"] == 0
    assert st["overruns"] == 0 and st["saturations"] > 0  # the +-4 V triangle drives fpga_qb into its rails
    assert st["samples"] > powered_up["frames_before"]
    assert st["cycles"] == st["cycles_max"] == lag["cycles"]  # the network's exact latency, every sample
    assert st["jack"] == JACK and st["i2c"] == 1  # ready, no NACKs
    assert st["serial"] == int.from_bytes(EEPROM_SERIAL, "big")

    writes = [e[1:] for e in log if e[0] == "write"]
    want = ([(0x10, r, v) for r, v in enumerate(AK4619_48K)] + [(0x18, 0x02, 0x00)]
            + [(0x05, r, v) for r, v in enumerate(PCA9635)])
    assert writes[: len(want)] == want
    reads = [e[1:] for e in log if e[0] == "read"]
    assert reads[:6] == [(0x52, 0xFA + i, b) for i, b in enumerate(EEPROM_SERIAL)]
    assert reads[6] == (0x18, 0x00, JACK)
    poll = writes[len(want): len(want) + 16]  # the LED levels of the latest samples, PWM0..15
    assert [r for _, r, _ in poll] == list(range(2, 18)) and {a for a, _, _ in poll} == {0x05}
    assert not any(e[0] == "nack" for e in log)


def _unplugged_from(x, k):
    """Inputs with jack 2 reading 0 from sample k on."""
    x = x.copy()
    x[k:, 2] = 0
    return x


def test_unplugged_jack_reads_zero_from_the_first_poll(powered_up, lag):
    """Every jack reads as plugged until the first poll; from then on input 2 (unplugged) reads 0.

    (Found by this test: the sequencer's ``jack`` started at 0 and ``ready`` comes before the first
    poll, so all inputs read 0 for one poll, ~19 samples at 48 kHz; ``jack`` now starts all plugged.)"""
    model, dac = Model.load(BUNDLED), powered_up["dac"]
    k = lag["frames"]
    played = np.tile(demo_signal(RATE, 0.1), (len(dac) // 4800 + 1, 1))[: len(dac) - k]
    x = board_inputs(played, model.input_dim)
    got = dac[k:, 0]

    def out(inputs):
        return np.clip(evaluate(model, inputs)[:, 0] * 4, -32768, 32767)

    first = int(np.flatnonzero(got != out(x))[0])
    assert first > DEADLINE * 0.9  # not before the sequencer had polled the PCA9557
    assert any(np.array_equal(got, out(_unplugged_from(x, k))) for k in range(first, max(0, first - 64), -1))


def test_port_in_use_is_a_clear_error(sim, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        with pytest.raises(NnhdlError, match=f"did not start: cannot listen on TCP port {port}: Address already"):
            BoardSim(sim, tmp_path / "run", frames=10, port=port).start()


@pytest.mark.parametrize("args,msg", [
    (["--input", "nope.wav"], "nope.wav: no such input file"),
    (["--output", "out.txt"], "out.txt: --output must be a .wav file"),
    (["--output", "no/such/dir/out.wav"], "folder no/such/dir does not exist"),
    (["--seconds", "0"], "--seconds 0.0: give a positive number"),
    (["--jack", "0x100"], "--jack 0x100: the PCA9557 input byte is 0x00..0xff"),
])
def test_bad_arguments_are_one_line_before_any_work(args, msg, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert pmod_main(["sim", "--build-dir", str(tmp_path / "b"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("boards.pmod: error: ") and msg in err[0]
    assert not (tmp_path / "b").exists()
