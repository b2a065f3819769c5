"""Verilator harness for the whole PmodTop: a C++ AK4619 TDM model on the pins, two clocks.

The codec model mirrors tests/pmod_models.CodecModel (frame at each LRCK falling
edge seen at a BICK falling edge, SDOUT changes on BICK falling, SDIN sampled on
BICK rising).  The I2C bus has no targets (SDA reads back what the FPGA drives).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

HARNESS = r"""
#include <cstdio>
#include <cstdint>
#include <vector>
#include "verilated.h"
#include "Vnnhdl_pmod.h"
#ifdef SINGLE_CLOCK   // clocking="mclk": the only clock is MCLK
#define ACLK clk
#define SET_RESET(v) top->rst = v
#else
#define ACLK audio_clk
#define SET_RESET(v) do { top->rst = v; top->audio_rst = v; } while (0)
#endif

int main(int argc, char **argv) {
    Verilated::commandArgs(argc, argv);
    FILE *fi = fopen(argv[1], "rb");
    std::vector<int16_t> adc;
    int16_t v;
    while (fread(&v, 2, 1, fi) == 1) adc.push_back(v);
    fclose(fi);
    long nframes = adc.size() / 4;
    long extra = atol(argv[3]);
    const int A = atoi(argv[4]), S = atoi(argv[5]);  // half periods (time units)
    Vnnhdl_pmod *top = new Vnnhdl_pmod;
    SET_RESET(1); top->sdout = 0; top->sda_i = 1;
    long t = 0, na = A, ns = S, audio_edges = 0;
    int prev_bick = 0, prev_lrck = 0, sdout = 0;
    long frame = -1; int bit = -1;
    int rx[128] = {0};
    std::vector<int16_t> out;
    long limit = (nframes + extra) * 256;
    while (audio_edges < limit) {
        long tn = na < ns ? na : ns;
        t = tn;
        bool arise = false;
        if (na == t) { top->ACLK = !top->ACLK; arise = top->ACLK; na += A; }
#ifndef SINGLE_CLOCK
        if (ns == t) { top->clk = !top->clk; ns += S; }
#else
        if (ns == t) ns += S;
#endif
        top->eval();
        if (arise) {
            audio_edges++;
            if (audio_edges == 8) { SET_RESET(0); top->eval(); }
            int bick = top->bick, lrck = top->lrck, sdin = top->sdin;
            if (prev_bick && !bick) {
                if (prev_lrck && !lrck) {
                    if (bit >= 0 && frame >= 0) {
                        for (int s = 0; s < 4; s++) {
                            int w = 0;
                            for (int k = 0; k < 16; k++) w = (w << 1) | rx[1 + 32 * s + k];
                            out.push_back((int16_t)w);
                        }
                        for (int k = 0; k < 128; k++) rx[k] = 0;
                    }
                    frame++; bit = 0;
                } else if (bit >= 0) bit++;
                if (bit >= 0) {
                    int pos = (bit + 127) % 128, slot = pos / 32, k = pos % 32;
                    if (bit == 0 || k >= 16 || frame < 0 || frame >= nframes) sdout = 0;
                    else sdout = ((uint16_t)adc[frame * 4 + slot] >> (15 - k)) & 1;
                }
                prev_lrck = lrck;
            } else if (!prev_bick && bick && bit >= 0 && bit < 128) {
                rx[bit] = sdin;
            }
            prev_bick = bick;
            top->sdout = sdout;
            top->sda_i = top->sda_oe ? 0 : 1;
            top->eval();
        }
    }
    FILE *fo = fopen(argv[2], "wb");
    fwrite(out.data(), 2, out.size(), fo);
    fclose(fo);
    delete top;
    return 0;
}
"""


def build(verilog_text: str, workdir: Path, *, single_clock: bool = False) -> Path:
    """Compile the harness (``single_clock`` for clocking="mclk"); returns the executable."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "nnhdl_pmod.v").write_text(verilog_text)
    (workdir / "harness.cpp").write_text(HARNESS)
    cmd = ["verilator", "--cc", "--exe", "--build", "-O2", "-Wno-fatal", "-Wno-lint", "-Wno-style",
           "--top-module", "nnhdl_pmod", "-j", "1", "nnhdl_pmod.v", "harness.cpp", "-o", "sim"]
    if single_clock:
        cmd += ["-CFLAGS", "-DSINGLE_CLOCK"]
    env = dict(os.environ, MAKEFLAGS="CFG_CXXFLAGS_PCH_I=-include")
    r = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    return workdir / "obj_dir" / "sim"


def run(exe: Path, adc: np.ndarray, *, extra_frames: int = 3, audio_half: int = 10, sys_half: int = 3) -> np.ndarray:
    """Frames of raw codec ADC counts in -> frames of DAC counts the codec received."""
    d = exe.parent
    np.asarray(adc, dtype="<i2").tofile(d / "in.bin")
    subprocess.run([str(exe), str(d / "in.bin"), str(d / "out.bin"), str(extra_frames), str(audio_half),
                    str(sys_half)], check=True, cwd=d, timeout=600)
    return np.fromfile(d / "out.bin", dtype="<i2").astype(np.int64).reshape(-1, 4)


def available() -> bool:
    return shutil.which("verilator") is not None
