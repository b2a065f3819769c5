"""The waveshaper data: synthetic generator and WAV recordings loader (with its errors)."""

import json

import numpy as np
import pytest
from scipy.io import wavfile

from nnhdl.errors import NnhdlError
from nnhdl.fixedpoint import QFormat
from training.data import (CORNER_SCALE, CORNERS, EDGES, RecordingData, SyntheticData, blend, crossfade, load_data,
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


# -- the whole square: edge and interior targets against DESIGN §5, written out here -----------

def _design_waves(phase):
    """DESIGN §5's four shapes, restated independently of training.data."""
    tri = lambda p: 1 - 4 * np.abs(p - 0.5)
    return {"sine": -np.cos(2 * np.pi * phase), "ramp": 2 * phase - 1,
            "square": np.where(phase < 0.5, -1.0, 1.0), "zigzag": tri(np.mod(2 * phase, 1.0))}


POS = {"sine": (-1, -1), "ramp": (-1, 1), "square": (1, 1), "zigzag": (1, -1)}
ROUND = [("sine", "ramp"), ("ramp", "square"), ("square", "zigzag"), ("zigzag", "sine")]
F32 = 2e-6  # float32 targets of magnitude <= 1.23: half an ulp is 6e-8, with margin for the sums


def test_held_out_edge_points_follow_the_design_crossfade():
    rate = 192000
    segs = make_test_set(4, rate, FMT, per_point=2, length=500, alphas=(0.25, 0.5, 0.75))
    edge_segs = [s for s in segs if "@" in s.label]
    assert sorted({s.label for s in edge_segs}) == sorted(f"{a}/{b}@{al:g}" for a, b in ROUND
                                                          for al in (0.25, 0.5, 0.75))
    scale = 5 / 4.096
    for s in edge_segs:
        a, b = s.label.split("@")[0].split("/")
        al = float(s.label.split("@")[1])
        phase = np.mod(s.phase0 + s.freq * np.arange(500) / rate, 1.0)
        w = _design_waves(phase)
        target = scale * (np.sin(al * np.pi / 2) * w[a] + np.sin((1 - al) * np.pi / 2) * w[b])
        assert np.max(np.abs(s.y - target)) < F32
        emb = scale * (al * np.array(POS[a]) + (1 - al) * np.array(POS[b]))
        assert np.array_equal(s.x[0, 1:3] * 4096, np.floor(emb * 4096 + 0.5))
        assert np.max(np.abs(s.x[:, 0] - scale * (1 - 4 * np.abs(phase - 0.5)))) <= 0.5 / 4096 + 1e-9


def test_interior_target_is_the_bilinear_constant_power_blend():
    rate = 48000
    pts = ((0.0, 0.0), (0.5, -0.5), (-0.5, 0.0))
    segs = make_test_set(3, rate, FMT, per_point=2, length=400, interior=pts)
    inner = [s for s in segs if s.edge == -1]
    assert sorted({s.label for s in inner}) == sorted(["(+0,+0)", "(+0.5,-0.5)", "(-0.5,+0)"])
    scale = 5 / 4.096
    for s in inner:
        e0, e1 = (float(v) for v in s.label.strip("()").split(","))
        phase = np.mod(s.phase0 + s.freq * np.arange(400) / rate, 1.0)
        w = _design_waves(phase)
        u, v = (e0 + 1) / 2 * np.pi / 2, (e1 + 1) / 2 * np.pi / 2
        gain = {"sine": np.cos(u) * np.cos(v), "ramp": np.cos(u) * np.sin(v),
                "square": np.sin(u) * np.sin(v), "zigzag": np.sin(u) * np.cos(v)}
        assert sum(g ** 2 for g in gain.values()) == pytest.approx(1.0)  # constant power
        assert np.max(np.abs(s.y - scale * sum(gain[k] * w[k] for k in w))) < F32
        if (e0, e1) == (0.0, 0.0):  # the centre is the equal mix of the four corners
            assert np.max(np.abs(s.y - scale * 0.5 * sum(w.values()))) < F32
        assert np.allclose(s.x[0, 1:3], np.floor(np.array([e0, e1]) * scale * 4096 + 0.5) / 4096)
    # the interior points leave the corner and edge windows unchanged
    plain = make_test_set(3, rate, FMT, per_point=2, length=400)
    assert all(np.array_equal(p.y, s.y) for p, s in zip(plain, segs))


def test_synthetic_sampling_covers_corners_edges_and_interior():
    d = SyntheticData(3, 48000, FMT)
    e = d.points(np.random.default_rng(0), 4000)
    on_corner = np.all(np.abs(e) == 1, axis=1)
    on_edge = (np.any(np.abs(e) == 1, axis=1)) & ~on_corner
    inside = ~np.any(np.abs(e) == 1, axis=1)
    # binomial standard deviation of a fraction of 4000 draws is <= 0.008: 5 sigma
    assert abs(on_corner.mean() - d.corner_fraction) < 0.04
    assert abs(on_edge.mean() - d.edge_fraction) < 0.04
    assert abs(inside.mean() - (1 - d.corner_fraction - d.edge_fraction)) < 0.04
    assert np.all(np.abs(e) <= 1)
    # targets of sampled windows are the blend at the sampled point
    x, y = d.render_points(np.array([100.0, 300.0]), np.array([0.1, 0.7]), e[:2], 200)
    phase = np.mod(np.array([[0.1], [0.7]]) + np.array([[100.0], [300.0]]) * np.arange(200) / 48000, 1.0)
    assert np.max(np.abs(y - CORNER_SCALE * blend(e[:2], phase))) < F32
    with pytest.raises(NnhdlError, match="must be in"):
        SyntheticData(3, 48000, FMT, edge_fraction=1.5)


def test_edge_labelled_recordings_load_and_train(tmp_path, capsys, monkeypatch):
    """A recorded target at an edge point ([1, 0]) or inside the square is trained as recorded."""
    ch = _oscillator()
    phase = np.mod(220.0 * np.arange(20000) / RATE, 1.0)
    mid = np.round(crossfade(0.5, wave("square", phase), wave("zigzag", phase)) * 5000 * 4).astype(np.int64)
    side = json.loads(json.dumps(SIDECAR))
    side["targets"].append({"channel": 5, "corner": [1, 0]})
    _write(tmp_path, "osc", ch + [mid], side)
    d = load_data(str(tmp_path), 3, RATE, FMT)
    # cross-fades only between adjacent corners of the square; the edge point is a point of its own
    fades = {frozenset((a, b)) for _, a, b in d.pairs if b is not None}
    assert fades == {frozenset((tuple(map(float, POS[a])), tuple(map(float, POS[b])))) for a, b in ROUND}
    assert any(a == (1.0, 0.0) and b is None for _, a, b in d.pairs)
    x, y = d.batch(np.random.default_rng(5), 64, 300)
    at_mid = [n for n in range(64) if np.allclose(x[n, 0, 1:3], [CORNER_SCALE, 0.0], atol=1e-3)]
    assert at_mid, "no window at the recorded edge point"
    for n in at_mid:  # its target is the recorded channel (counts >> 2 as mantissas)
        m = np.round(y[n].astype(np.float64) * 4096)
        assert np.all(np.isin(m, np.floor(mid / 4)))
    monkeypatch.chdir(tmp_path)
    from training.train import main

    cfg = tmp_path / "net.json"
    cfg.write_text(json.dumps({"input_dim": 3, "sample_rate": RATE,
                               "layers": [{"kernel_size": 2, "dilation": 2, "out_dim": 4},
                                          {"kernel_size": 1, "out_dim": 1, "activation": "none"}]}))
    assert main(["--config", str(cfg), "--data", str(tmp_path), "--steps", "5", "--batch", "4",
                 "--out", str(tmp_path / "m.npz"), "--quiet"]) == 0


def test_nan_corner_in_sidecar_is_rejected(tmp_path):
    side = json.loads(json.dumps(SIDECAR))
    side["targets"][1]["corner"] = [float("nan"), 1]
    _write(tmp_path, "osc", _oscillator(), side)
    with pytest.raises(NnhdlError, match=r"must be two numbers in \[-1, 1\]|NaN"):
        load_data(str(tmp_path), 4, RATE, FMT)
