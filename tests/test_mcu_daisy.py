"""The Daisy Patch project.  libDaisy cannot be linked here (not in any registry), so
main.cpp is compiled against a small stand-in for libDaisy's DaisyPatch API written in
this test (the only mock: it plays the role of the board) and run on the host: the
audio callback must deliver the golden model's output for audio in 1 + knobs."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from nnhdl.configs import random_model
from nnhdl.reference import FLOAT32_UNIT_ROUNDOFF, evaluate, evaluate_float_bound

from mcu.daisy import VOLTS_5_IN_MODEL_UNITS
from mcu.export import export

FAKE_DAISY = r"""
// Test stand-in for libDaisy's daisy_patch.h: just the API main.cpp uses.
#pragma once
#include <cstddef>
#include <cstdio>
#include <cstdlib>
namespace daisy {
struct AudioHandle { typedef const float *const *InputBuffer; typedef float **OutputBuffer;
                     typedef void (*AudioCallback)(InputBuffer, OutputBuffer, size_t); };
struct SaiHandle { struct Config { enum class SampleRate { SAI_48KHZ }; }; };
class DaisyPatch {
  public:
    enum Ctrl { CTRL_1, CTRL_2, CTRL_3, CTRL_4 };
    void Init() {}
    void ProcessAnalogControls() {}
    float GetKnobValue(Ctrl c) { return c == CTRL_1 ? 0.25f : (c == CTRL_2 ? 0.8f : 0.0f); }
    void SetAudioSampleRate(SaiHandle::Config::SampleRate) { rate_ok = true; }
    void SetAudioBlockSize(size_t n) { block = n; }
    void StartAdc() {}
    void StartAudio(AudioHandle::AudioCallback cb) {
        if (!rate_ok || block == 0 || block > 64) std::exit(3);
        float in[4][64] = {}, o[4][64];
        const float *ins[4] = {in[0], in[1], in[2], in[3]};
        float *outs[4] = {o[0], o[1], o[2], o[3]};
        for (;;) {
            size_t got = std::fread(in[0], sizeof(float), block, stdin);
            if (got != block) std::exit(0);
            cb(ins, outs, block);
            std::fwrite(o[0], sizeof(float), block, stdout);
            std::fwrite(o[1], sizeof(float), block, stdout);
        }
    }
  private:
    bool rate_ok = false;
    size_t block = 0;
};
}
"""

pytestmark = pytest.mark.skipif(not shutil.which("g++"), reason="needs the host g++")


@pytest.mark.parametrize("arith", ["q412", "f32"])
def test_daisy_patch_project_runs_against_fake_board(arith, tmp_path):
    model = random_model("mcu", seed=31)
    out = tmp_path / "proj"
    export(model, out, arith, board="daisy-patch")
    for name in ("main.cpp", "Makefile", "README.md", "nnhdl_model.c", "nnhdl_model.h"):
        assert (out / name).is_file()
    mk = (out / "Makefile").read_text()
    assert "LIBDAISY_DIR" in mk and "include $(SYSTEM_FILES_DIR)/Makefile" in mk and "main.cpp" in mk
    assert "libDaisy" in (out / "README.md").read_text()
    (out / "daisy_patch.h").write_text(FAKE_DAISY)
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-c", "nnhdl_model.c"], cwd=out, check=True)
    subprocess.run(["g++", "-O2", "-Wall", "-Wextra", "-Werror", "-I.", "main.cpp", "nnhdl_model.o", "-o", "fw"],
                   cwd=out, check=True)
    n = 2000
    rng = np.random.default_rng(0)
    t = np.arange(n)
    audio = (0.9 * (1 - 4 * np.abs((t * 220 / 48000) % 1 - 0.5))).astype(np.float32)
    audio[n // 2:] = rng.uniform(-1, 1, n - n // 2).astype(np.float32)
    p = subprocess.run(["./fw"], cwd=out, input=audio.tobytes(), capture_output=True, check=True)
    res = np.frombuffer(p.stdout, dtype=np.float32).reshape(-1, 2, 4).transpose(0, 2, 1).reshape(-1, 2)
    wet, dry = res[:, 0], res[:, 1]
    assert np.array_equal(dry, audio)
    k = np.float32(VOLTS_5_IN_MODEL_UNITS)
    e = [(np.float32(2) * np.float32(v) - np.float32(1)) * k for v in (0.25, 0.8)]
    x = np.stack([audio * k, np.full(n, e[0], np.float32), np.full(n, e[1], np.float32)], axis=1)
    if arith == "q412":
        m = np.clip(np.floor(x * np.float32(4096) + np.float32(0.5)), -32768, 32767).astype(np.int64)
        y = evaluate(model, m)[:, 0].astype(np.float32) * np.float32(1 / 4096)
        expect = np.clip(y / k, -1, 1)
        assert np.allclose(wet, expect, rtol=0, atol=1e-6)
    else:
        # the model's derived float32 error bound, then one float32 division
        # (relative error <= 2**-24) and a clamp (1-Lipschitz) in main.cpp
        ref, bound = evaluate_float_bound(model, x.astype(np.float64), FLOAT32_UNIT_ROUNDOFF)
        want = ref[:, 0] / float(k)
        slack = bound[:, 0] / float(k) * (1 + 2.0 ** -24) + 2.0 ** -24 * (np.abs(want) + bound[:, 0] / float(k))
        assert np.all(np.abs(wet - np.clip(want, -1, 1)) <= slack + 2.0 ** -126)


def test_readme_warns_about_sample_rate(tmp_path):
    model = random_model("fpga_qb", seed=1)  # a 192 kHz model
    export(model, tmp_path / "p", "q412", board="daisy-patch")
    assert "192000 Hz" in (tmp_path / "p" / "README.md").read_text()
