"""Verilator back end: Network -> Verilog -> C++ model with a streaming harness.

The design is converted once with Amaranth's Verilog back end; a small C++
harness (generated for the design's port widths) is compiled with Verilator
and cached by a hash of the Verilog, the harness and the Verilator version,
so a model runs without rebuilding until its weights or shape change.  Samples
travel through files of little-endian int32; the harness reports progress on
stderr, and can stall ``valid``/``ready`` at random like the Python tests.
"""

from __future__ import annotations

import hashlib
import re
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from ..errors import NnhdlError
from ..model import Model

if TYPE_CHECKING:
    from ..hdl.mult import Multiplier

__all__ = ["VerilatorSim", "build", "cache_dir"]

TOP = "nnhdl_net"


def cache_dir() -> Path:
    """Where built simulators live (``$NNHDL_CACHE`` or ``~/.cache/nnhdl``)."""
    root = os.environ.get("NNHDL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "nnhdl")
    return Path(root) / "verilator"


def _verilator() -> str:
    exe = shutil.which("verilator")
    if exe is None:
        raise NnhdlError("verilator is not installed; install it (Debian: apt-get install verilator) "
                         "or use --backend pysim")
    return exe


def _ctype(bits: int) -> str:
    return "wide" if bits > 64 else "narrow"


_HARNESS = r"""
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <vector>
#include "verilated.h"
#include "V@TOP@.h"

static const int IN_DIM = @IN_DIM@, OUT_DIM = @OUT_DIM@, W = @W@;
static const int IN_WORDS = (IN_DIM * W + 31) / 32, OUT_WORDS = (OUT_DIM * W + 31) / 32;

static void put_bits(uint32_t* words, int pos, int n, uint64_t v) {
    for (int b = 0; b < n; b++, pos++)
        if ((v >> b) & 1) words[pos / 32] |= 1u << (pos % 32);
}
static int64_t get_bits(const uint32_t* words, int pos, int n) {
    uint64_t v = 0;
    for (int b = 0; b < n; b++, pos++) v |= (uint64_t)((words[pos / 32] >> (pos % 32)) & 1) << b;
    if ((v >> (n - 1)) & 1) v |= ~(uint64_t)0 << n;   // sign-extend
    return (int64_t)v;
}
static uint64_t lcg_state = 1;
static double rnd() {
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(lcg_state >> 11) / 9007199254740992.0;
}

int main(int argc, char** argv) {
    if (argc < 7) { fprintf(stderr, "usage: sim WEIGHTS N_WEIGHTS IN OUT N STALL [SEED]\n"); return 2; }
    long n_weights = atol(argv[2]);
    std::vector<int32_t> weights((size_t)n_weights);
    FILE* fw = fopen(argv[1], "rb");
    if (!fw || fread(weights.data(), 4, weights.size(), fw) != weights.size()) { fprintf(stderr, "cannot read weights\n"); return 2; }
    fclose(fw);
    argv += 2;
    long n = atol(argv[3]);
    double stall = atof(argv[4]);
    lcg_state = argc > 7 ? strtoull(argv[5], 0, 10) * 2 + 1 : 1;
    std::vector<int32_t> in((size_t)n * IN_DIM), out((size_t)n * OUT_DIM);
    FILE* f = fopen(argv[1], "rb");
    if (!f || fread(in.data(), 4, in.size(), f) != in.size()) { fprintf(stderr, "cannot read input\n"); return 2; }
    fclose(f);

    VerilatedContext ctx;
    V@TOP@ top(&ctx);
    top.clk = 0; top.rst = 1; top.i__valid = 0; top.o__ready = 0;
    top.weight_write__en = 0; top.bank_swap = 0;
    for (int c = 0; c < 4; c++) { top.clk = 0; top.eval(); top.clk = 1; top.eval(); }
    top.rst = 0;
    // the design is built for the model's shape; its weights arrive through the runtime write port
    for (long a = 0; a < n_weights; a++) {
        top.weight_write__addr = a; top.weight_write__data = (uint32_t)weights[a] & ((1u << W) - 1);
        top.weight_write__en = 1;
        top.clk = 0; top.eval(); top.clk = 1; top.eval();
    }
    top.weight_write__en = 0;
    for (int c = 0; c < @WLAT@; c++) { top.clk = 0; top.eval(); top.clk = 1; top.eval(); }

    // inputs are offered back to back (several samples in flight); each output's latency is
    // counted from its own input handshake, and the spacing of input handshakes gives the II
    long next_in = 0, next_out = 0;
    std::vector<unsigned long long> in_cycle((size_t)n);
    unsigned long long cycle = 0, lat_min = ~0ULL, lat_max = 0, ii_min = ~0ULL, ii_max = 0;
    long gap = 0;
    long report = n / 20 > 1000 ? n / 20 : 1000;
    while (next_out < n) {
        bool valid = next_in < n && gap == 0;
        if (valid) {
            uint32_t words[IN_WORDS] = {0};
            for (int j = 0; j < IN_DIM; j++) put_bits(words, j * W, W, (uint64_t)(int64_t)in[next_in * IN_DIM + j]);
            @SET_IN@
        }
        top.i__valid = valid;
        bool ready = stall == 0 || rnd() >= stall;
        top.o__ready = ready;
        top.clk = 0; top.eval();
        bool in_fire = valid && top.i__ready;
        if (top.o__valid && ready) {
            uint32_t words[OUT_WORDS] = {0};
            @GET_OUT@
            for (int j = 0; j < OUT_DIM; j++) out[next_out * OUT_DIM + j] = (int32_t)get_bits(words, j * W, W);
            unsigned long long lat = cycle - in_cycle[next_out];
            if (lat < lat_min) lat_min = lat;
            if (lat > lat_max) lat_max = lat;
            next_out++;
            if (next_out % report == 0) { fprintf(stderr, "progress %ld %ld\n", next_out, n); fflush(stderr); }
        }
        if (in_fire) {
            if (next_in > 0) {
                unsigned long long ii = cycle - in_cycle[next_in - 1];
                if (ii < ii_min) ii_min = ii;
                if (ii > ii_max) ii_max = ii;
            }
            in_cycle[next_in++] = cycle;
            if (stall > 0 && rnd() < stall) gap = 1 + (long)(rnd() * 3);
        } else if (gap > 0 && !valid) gap--;
        top.clk = 1; top.eval();
        cycle++;
        if (cycle > (unsigned long long)n * 1000000ULL + 1000000ULL) { fprintf(stderr, "design hangs\n"); return 3; }
    }
    f = fopen(argv[2], "wb");
    if (!f || fwrite(out.data(), 4, out.size(), f) != out.size()) { fprintf(stderr, "cannot write output\n"); return 2; }
    fclose(f);
    if (n < 2) ii_min = ii_max = 0;
    printf("cycles %llu latency_min %llu latency_max %llu ii_min %llu ii_max %llu\n", cycle, lat_min, lat_max,
           ii_min, ii_max);
    return 0;
}
"""


def _harness(model: Model) -> str:
    w = model.qformat.width
    in_bits, out_bits = w * model.input_dim, w * model.output_dim
    if in_bits > 64:
        set_in = "for (int k = 0; k < IN_WORDS; k++) top.i__payload[k] = words[k];"
    else:
        set_in = "top.i__payload = (uint64_t)words[0]" + (" | ((uint64_t)words[1] << 32);" if in_bits > 32 else ";")
    if out_bits > 64:
        get_out = "for (int k = 0; k < OUT_WORDS; k++) words[k] = top.o__payload[k];"
    else:
        get_out = "{ uint64_t v = top.o__payload; words[0] = (uint32_t)v;" + (
            " words[1] = (uint32_t)(v >> 32); }" if out_bits > 32 else " }")
    text = (_HARNESS.replace("@TOP@", TOP).replace("@IN_DIM@", str(model.input_dim))
            .replace("@OUT_DIM@", str(model.output_dim)).replace("@W@", str(w))
            .replace("@SET_IN@", set_in).replace("@GET_OUT@", get_out))
    # Verilator escapes "__" in port names as "___05F"
    return re.sub(r"top\.(\w+?)__(\w+)", r"top.\1___05F\2", text)


def _zero_weights(model: Model) -> Model:
    layers = [l.with_weights(np.zeros_like(l.weight), np.zeros_like(l.bias)) for l in model.layers]
    return Model(layers, model.qformat, model.rounding, model.input_dim, model.sample_rate, {})


def build(model: Model, lanes: int | Sequence[int] | None = None, *, multiplier: Multiplier | None = None,
          log: Callable[[str], None] | None = None) -> Path:
    """Compile (or find in the cache) the simulator for ``model``; return its executable.

    ``multiplier`` (:mod:`nnhdl.hdl.mult`, default fabric logic): ``ECP5_MULT18`` simulates the netlist a
    bitstream gets, its MULT18X18D cells through the multiplier's behavioural model.
    """
    from amaranth.back import verilog

    from ..hdl.mult import FABRIC
    from ..hdl.network import Network

    exe_v = _verilator()
    multiplier = multiplier or FABRIC
    # Built for the shape only (zero weights): retrained weights reuse the cached simulator.
    net = Network(_zero_weights(model), lanes=lanes, multiplier=multiplier)
    text = verilog.convert(net, name=TOP, emit_src=False)
    cells = multiplier.simulation_sources()
    harness = _harness(model).replace("@WLAT@", str(net.weight_write_latency))
    version = subprocess.run([exe_v, "--version"], capture_output=True, text=True).stdout.strip()
    parts = [text, harness, version, *(f"{k}\n{v}" for k, v in sorted(cells.items()))]
    key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]
    folder = cache_dir() / key
    exe = folder / "sim"
    if exe.exists():
        return exe
    if log:
        log(f"verilator: building the simulator for {model.name or 'model'} (cached in {folder})")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=folder.parent))
    try:
        (tmp / f"{TOP}.v").write_text(text)
        (tmp / "harness.cpp").write_text(harness)
        for name, cell in cells.items():
            (tmp / name).write_text(cell)
        cmd = [exe_v, "--cc", "--exe", "--build", "-j", "1", "-O3", "--top-module", TOP, "-Wno-fatal", "-Wno-lint",
               "-Wno-style", "--Mdir", "obj", "-o", "sim", f"{TOP}.v", *cells, "harness.cpp",
               "-MAKEFLAGS", "OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O1"]
        started = time.perf_counter()
        res = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        if res.returncode != 0:
            raise NnhdlError(f"verilator build failed (see {tmp}):\n{(res.stdout + res.stderr)[-2000:]}")
        shutil.copy2(tmp / "obj" / "sim", tmp / "sim")
        shutil.rmtree(tmp / "obj")
        try:
            os.replace(tmp, folder)
        except OSError:  # another process built it first
            shutil.rmtree(tmp, ignore_errors=True)
        if log:
            log(f"verilator: built in {time.perf_counter() - started:.1f} s")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return exe


@dataclass
class VerilatorSim:
    """Run a model's Verilator simulator on sample arrays."""

    model: Model
    lanes: int | Sequence[int] | None = None
    log: Callable[[str], None] | None = None
    multiplier: Multiplier | None = None

    def __post_init__(self) -> None:
        self.exe = build(self.model, self.lanes, multiplier=self.multiplier, log=self.log)
        self.figures: dict[str, int] = {}

    def run(self, x: np.ndarray, *, stall: float = 0.0, seed: int = 1) -> np.ndarray:
        """``[T, input_dim]`` mantissas -> ``[T, output_dim]`` int64 (figures in :attr:`figures`)."""
        x = np.ascontiguousarray(np.asarray(x, dtype=np.int32))
        n = len(x)
        if n == 0:
            return np.zeros((0, self.model.output_dim), np.int64)
        with tempfile.TemporaryDirectory(prefix="nnhdl-vsim-") as d:
            fin, fout = Path(d) / "in.bin", Path(d) / "out.bin"
            x.astype("<i4").tofile(fin)
            image = self.model.weight_image()
            fw = Path(d) / "weights.bin"
            image.astype("<i4").tofile(fw)
            proc = subprocess.Popen([str(self.exe), str(fw), str(len(image)), str(fin), str(fout), str(n), str(stall), str(seed)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert proc.stderr is not None and proc.stdout is not None
            err_lines = []
            for line in proc.stderr:
                if line.startswith("progress") and self.log:
                    done, total = line.split()[1:3]
                    self.log(f"verilator: {int(done):,}/{int(total):,} samples")
                else:
                    err_lines.append(line)
            out_text = proc.stdout.read()
            if proc.wait() != 0:
                raise NnhdlError(f"verilator simulation failed: {''.join(err_lines)[-1000:]}")
            y = np.fromfile(fout, dtype="<i4").astype(np.int64).reshape(n, self.model.output_dim)
        parts = out_text.split()
        self.figures = {parts[k]: int(parts[k + 1]) for k in range(0, len(parts) - 1, 2)}
        return y
