"""The waveshaper data: synthetic generator and WAV recordings loader (with its errors)."""

import json

import numpy as np
import pytest
from scipy.io import wavfile

from nnhdl.errors import NnhdlError
from nnhdl.fixedpoint import QFormat
from training.data import (CORNER_SCALE, CORNERS, EDGES, RecordingData, SyntheticData, crossfade, load_data,
                           triangle, wave)
from training.data import test_set as make_test_set

FMT = QFormat(16, 12)


def test_wave_shapes_follow_design():
    phase = np.array([0.0, 0.25, 0.5, 0.75])
    assert np.allclose(triangle(phase), [-1, 0, 1, 0])
    assert np.allclose(wave("sine", phase), [-1, 0, 1, 0])
    assert np.allclose(wave("ramp", phase), [-1, -0.5, 0, 0.5])
    assert np.allclose(wave("square", phase), [-1, -1, 1, 1])
    assert np.allclose(wave("zigzag", phase), [-1, 1, -1, 1])
    assert CORNER_SCALE == pytest.approx(5 / 4.096)
    # constant power: equal-weight mix of two orthogonal unit waves keeps their power
    assert np.allclose(crossfade(0.5, np.array([1.0, 0.0]), np.array([0.0, 1.0])), [np.sqrt(0.5)] * 2)


def test_synthetic_batch_is_deterministic_quantised_and_on_task():
    d = SyntheticData(4, 192000, FMT, corner_fraction=1.0)
    x, y = d.batch(np.random.default_rng(3), 64, 500)
    x2, y2 = d.batch(np.random.default_rng(3), 64, 500)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert x.shape == (64, 500, 4) and y.shape == (64, 500) and x.dtype == np.float32
    m = x.astype(np.float64) * FMT.scale
    assert np.array_equal(m, np.round(m)), "inputs must be exact Q4.12 mantissas"
    assert np.all(x[:, :, 3] == 0)
    assert np.max(np.abs(x[:, :, 0])) <= CORNER_SCALE + 1e-3 and np.max(np.abs(y)) <= CORNER_SCALE + 1e-3
    # every window sits on a corner: embedding at +-5 V, target is that corner's wave of the core phase
    corners = {tuple(np.sign(v)): k for k, v in CORNERS.items()}
    for n in range(64):
        e = x[n, 0, 1:3]
        assert np.allclose(np.abs(e), CORNER_SCALE, atol=1e-3)
        assert np.all(x[n, :, 1:3] == e)
        name = corners[tuple(np.sign(e))]
        # recover the phase from the (unquantised) ramp is not possible in general; check shape-specific facts
        if name == "square":
            assert np.allclose(np.abs(y[n]), CORNER_SCALE)
        if name == "sine":
            assert np.allclose(y[n], CORNER_SCALE * np.sin(np.pi / 2 * x[n, :, 0] / CORNER_SCALE), atol=2e-3)
        if name == "zigzag":
            assert np.allclose(y[n], CORNER_SCALE * (1 - 2 * np.abs(x[n, :, 0] / CORNER_SCALE)), atol=2e-3)


def test_synthetic_frequencies_span_20hz_to_2khz():
    d = SyntheticData(3, 48000, FMT)
    x, _ = d.batch(np.random.default_rng(0), 400, 4800)
    # zero crossings of the triangle over 0.1 s: 2 per period
    crossings = np.sum(np.diff(np.sign(x[:, :, 0]), axis=1) != 0, axis=1) / 2 / 0.1
    assert crossings.min() < 60 and crossings.max() > 1000 and crossings.max() <= 2050


def test_test_set_is_fixed_and_not_in_training_stream():
    a = make_test_set(4, 192000, FMT, per_point=2, length=300)
    b = make_test_set(4, 192000, FMT, per_point=2, length=300)
    assert [s.label for s in a] == [s.label for s in b]
    assert all(np.array_equal(s.x, t.x) for s, t in zip(a, b))
    labels = {s.label for s in a}
    assert set(CORNERS) <= labels and len(labels) == 4 + len(EDGES)
    train = SyntheticData(4, 192000, FMT).batch(np.random.default_rng(0), 64, 300)[0]
    assert not any(np.array_equal(s.x, w) for s in a for w in train)


def test_sample_rate_and_input_dim_checks():
    with pytest.raises(NnhdlError, match="at least 3 input channels"):
        SyntheticData(2, 48000)
    with pytest.raises(NnhdlError, match="too low"):
        SyntheticData(3, 4000)


# -- recordings ------------------------------------------------------------------

RATE = 48000


def _write(folder, name, channels, sidecar, rate=RATE):
    wavfile.write(folder / f"{name}.wav", rate, np.stack(channels, axis=1).astype(np.int16))
    if sidecar is not None:
        (folder / f"{name}.json").write_text(json.dumps(sidecar))


def _oscillator(n=20000, freq=220.0):
    phase = np.mod(freq * np.arange(n) / RATE, 1.0)
    counts = lambda w: np.round(w * 5000 * 4).astype(np.int64)  # 4 counts/mV, +-5 V
    return [counts(triangle(phase))] + [counts(wave(k, phase)) for k in CORNERS]


SIDECAR = {"core": 0, "targets": [{"channel": i + 1, "corner": list(CORNERS[k])} for i, k in enumerate(CORNERS)]}


def test_recordings_load_and_batch(tmp_path):
    _write(tmp_path, "osc", _oscillator(), SIDECAR)
    d = load_data(str(tmp_path), 4, RATE, FMT)
    assert isinstance(d, RecordingData)
    x, y = d.batch(np.random.default_rng(1), 32, 400)
    assert x.shape == (32, 400, 4)
    m = x.astype(np.float64) * FMT.scale
    assert np.array_equal(m, np.round(m))
    # core comes through as counts >> 2 mantissas (+-5 V = +-5000 mantissas)
    assert np.max(np.abs(m[:, :, 0])) == 5000
    # a window on the square corner has a square target
    on_square = [n for n in range(32) if np.allclose(x[n, 0, 1:3], CORNER_SCALE, atol=1e-3)]
    for n in on_square:
        assert np.allclose(np.abs(y[n]), 5000 / 4096, atol=1e-3)
    # held-out windows come from the last 20 %
    xh, _ = d.batch(np.random.default_rng(1), 4, 400, train=False)
    assert xh.shape == (4, 400, 4)


@pytest.mark.parametrize("case, message", [
    ("channels", "has 4 channels but osc.json names 5"),
    ("rate", "recorded at 44100 Hz but the model runs at 48000 Hz"),
    ("silent", "channel 2 is silent"),
    ("clipped", "channel 3 is clipped"),
    ("nosidecar", "no sidecar osc.json"),
    ("badsidecar", "malformed sidecar"),
    ("badcorner", "must be two numbers in [-1, 1]"),
    ("empty", "no .wav recordings"),
])
def test_bad_recordings_give_clear_errors(tmp_path, case, message):
    ch = _oscillator()
    side = json.loads(json.dumps(SIDECAR))
    rate = RATE
    if case == "channels":
        ch = ch[:4]
    elif case == "rate":
        rate = 44100
    elif case == "silent":
        ch[2] = np.zeros_like(ch[2])
    elif case == "clipped":
        ch[3] = np.clip(ch[3] * 3, -32768, 32767)
    elif case == "nosidecar":
        side = None
    elif case == "badsidecar":
        side = {"core": 0}
    elif case == "badcorner":
        side["targets"][0]["corner"] = [2, 0]
    if case != "empty":
        _write(tmp_path, "osc", ch, side, rate)
    with pytest.raises(NnhdlError) as e:
        load_data(str(tmp_path), 4, RATE, FMT)
    assert message in str(e.value)


def test_train_cli_on_recordings(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from nnhdl.model import Model
    from training.train import main

    rec = tmp_path / "rec"
    rec.mkdir()
    _write(rec, "osc", _oscillator(), SIDECAR)
    cfg = tmp_path / "net.json"
    cfg.write_text(json.dumps({"input_dim": 3, "sample_rate": RATE,
                               "layers": [{"kernel_size": 2, "dilation": 2, "out_dim": 4},
                                          {"kernel_size": 1, "out_dim": 1, "activation": "none"}]}))
    out = tmp_path / "m.npz"
    assert main(["--config", str(cfg), "--data", str(rec), "--steps", "5", "--batch", "4", "--out", str(out),
                 "--quiet"]) == 0
    assert Model.load(out).meta["data"].startswith("recordings:rec")
    from training.evaluate import main as evaluate_main

    assert evaluate_main(["--model", str(out), "--data", str(rec), "--no-pictures", "--per-point", "1",
                          "--length", "300", "--out", str(tmp_path / "rep")]) == 0
    text = capsys.readouterr().out
    assert "recording osc.wav (+1,+1)" in text
    assert "| osc.wav (-1,-1) |" in (tmp_path / "rep" / "m.md").read_text()
    assert main(["--config", str(cfg), "--data", str(tmp_path / "nothing"), "--steps", "5", "--out",
                 str(tmp_path / "n.npz"), "--quiet"]) == 2
    assert "recordings folder does not exist" in capsys.readouterr().err
