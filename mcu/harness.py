"""Test programs around the emitted code: a host runner and a QEMU firmware.

The host runner streams binary samples file -> ``step`` -> file, so any
number of samples can be checked.  The firmware for QEMU's ``mps2-an500``
(a Cortex-M7) carries the test input as a constant array, prints every output
word in hex over semihosting, then times two loops of ``N1`` and ``N2``
inferences with SysTick; with ``-icount shift=0`` one SysTick tick is exactly
40 instructions, and differencing the two loops cancels the start-up cost.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnhdl.errors import NnhdlError

from .arith import arithmetic
from .templates import TEMPLATE_DIR

__all__ = ["host_main", "firmware_main", "testdata_c", "parse_firmware_output", "QemuResult",
           "INSTRUCTIONS_PER_TICK", "TIMING_N1", "TIMING_N2"]

INSTRUCTIONS_PER_TICK = 40  # mps2 SysTick at 25 MHz, icount shift=0: 1 instruction per ns
TIMING_N1 = 100
TIMING_N2 = 1100


def host_main(prefix: str, arith: str, trace: bool = False) -> str:
    """``main`` for the host: ``prog IN.bin OUT.bin [TRACE.bin]``."""
    a = arithmetic(arith)
    t, step = a.c_type, a.step_name(prefix)
    P = prefix.upper()
    trace_fn = (
        "FILE *nnhdl_trace_file;\n"
        "void nnhdl_trace(const float *p, uint32_t n)\n{\n"
        "    if (nnhdl_trace_file) { uint32_t m = n; fwrite(&m, sizeof m, 1, nnhdl_trace_file);"
        " fwrite(p, sizeof *p, n, nnhdl_trace_file); }\n}\n"
        if trace else ""
    )
    open_trace = "    if (argc > 3) nnhdl_trace_file = fopen(argv[3], \"wb\");\n" if trace else ""
    close_trace = "    if (nnhdl_trace_file) fclose(nnhdl_trace_file);\n" if trace else ""
    return f"""#include <stdint.h>
#include <stdio.h>
#include "{prefix}_model.h"
{trace_fn}
int main(int argc, char **argv)
{{
    {t} in[{P}_INPUT_DIM], out[{P}_OUTPUT_DIM];
    if (argc < 3) return 2;
    FILE *fi = fopen(argv[1], "rb"), *fo = fopen(argv[2], "wb");
    if (!fi || !fo) return 3;
{open_trace}    {prefix}_reset();
    while (fread(in, sizeof in, 1, fi) == 1) {{
        {step}(in, out);
        if (fwrite(out, sizeof out, 1, fo) != 1) return 4;
    }}
{close_trace}    fclose(fi);
    return fclose(fo) == 0 ? 0 : 5;
}}
"""


def testdata_c(x: np.ndarray, arith: str, prefix: str) -> str:
    """The test input as a C array (mantissas, or float bit patterns)."""
    a = arithmetic(arith)
    body = f"const {a.c_type} {a.test_symbol}[{x.size}] = {{{', '.join(a.c_literals(x))}}};\n"
    return f"#include <stdint.h>\nconst uint32_t nnhdl_test_n = {x.shape[0]}u;\n" + body


def firmware_main(prefix: str, arith: str) -> str:
    P = prefix.upper()
    a = arithmetic(arith)
    typ, step, digits, src = a.c_type, a.step_name(prefix), 2 * a.value_bytes, a.test_symbol
    decl = f"extern const {typ} {src}[];\n"
    word, conv = a.out_word, a.out_conv
    return f"""#include <stdint.h>
#include <string.h>
#include "{prefix}_model.h"

{decl}extern const uint32_t nnhdl_test_n;
void nnhdl_semihost_write0(const char *s);

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static char buf[4096 + 64];
static uint32_t used;

static void flush(void)
{{
    buf[used] = 0;
    nnhdl_semihost_write0(buf);
    used = 0;
}}

static void put_hex(uint32_t v, int digits)
{{
    for (int i = digits - 1; i >= 0; i--) buf[used++] = "0123456789abcdef"[(v >> (4 * i)) & 15u];
}}

static void put_char(char c)
{{
    buf[used++] = c;
    if (used >= 4096) flush();
}}

static uint32_t timed(uint32_t n, const {typ} *x, {typ} *out)
{{
    const {typ} *p = x, *end = x + nnhdl_test_n * {P}_INPUT_DIM;
    uint32_t t0 = SYST_CVR;
    for (uint32_t i = 0; i < n; i++) {{
        {step}(p, out);
        p += {P}_INPUT_DIM;
        if (p == end) p = x;
    }}
    uint32_t t1 = SYST_CVR;
    return (t0 - t1) & 0xFFFFFFu;
}}

int main(void)
{{
    const {typ} *x = {src};
    static {typ} out[{P}_OUTPUT_DIM];
    nnhdl_semihost_write0("NNHDL-BEGIN\\n");
    {prefix}_reset();
    for (uint32_t t = 0; t < nnhdl_test_n; t++) {{
        {step}(x + t * {P}_INPUT_DIM, out);
        for (int o = 0; o < {P}_OUTPUT_DIM; o++) {{
{conv}            put_hex({word}, {digits});
            put_char(o + 1 < {P}_OUTPUT_DIM ? ' ' : '\\n');
        }}
    }}
    flush();
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0u;
    SYST_CSR = 5u; /* enable, processor clock, no interrupt */
    {prefix}_reset();
    uint32_t d1 = timed({TIMING_N1}u, x, out);
    {prefix}_reset();
    uint32_t d2 = timed({TIMING_N2}u, x, out);
    buf[used++] = 'T';
    buf[used++] = ' ';
    put_hex(d1, 8);
    buf[used++] = ' ';
    put_hex(d2, 8);
    buf[used++] = '\\n';
    flush();
    nnhdl_semihost_write0("NNHDL-END\\n");
    return 0;
}}
"""


@dataclass
class QemuResult:
    output: np.ndarray  # int64 mantissas or float32
    instructions_per_inference: float


def parse_firmware_output(text: str, arith: str, n: int, out_dim: int) -> QemuResult:
    """Turn the firmware's semihosting text back into arrays and an instruction count."""
    if "NNHDL-BEGIN" not in text or "NNHDL-END" not in text:
        raise NnhdlError("the Cortex-M7 firmware did not run to completion under QEMU:\n" + text[-2000:])
    body = text.split("NNHDL-BEGIN\n", 1)[1].split("NNHDL-END", 1)[0]
    lines = body.strip().splitlines()
    m = re.fullmatch(r"T ([0-9a-f]{8}) ([0-9a-f]{8})", lines[-1].strip())
    if not m:
        raise NnhdlError("firmware timing line missing")
    d1, d2 = int(m.group(1), 16), int(m.group(2), 16)
    rows = [l.split() for l in lines[:-1]]
    if len(rows) != n or any(len(r) != out_dim for r in rows):
        raise NnhdlError(f"firmware printed {len(rows)} output rows, expected {n} of {out_dim} values")
    words = np.array([[int(v, 16) for v in r] for r in rows], dtype=np.uint32)
    out = arithmetic(arith).from_words(words)
    per = (d2 - d1) * INSTRUCTIONS_PER_TICK / (TIMING_N2 - TIMING_N1)
    return QemuResult(out, per)


def startup_files() -> list[Path]:
    return [TEMPLATE_DIR / "startup_mps2.c"]


def linker_script() -> Path:
    return TEMPLATE_DIR / "mps2_an500.ld"


def read_f32(path: Path, cols: int) -> np.ndarray:
    data = np.fromfile(path, dtype="<f4")
    return data.reshape(-1, cols)


def read_trace(path: Path) -> list[np.ndarray]:
    """Trace file: records of (uint32 n, n float32)."""
    raw = path.read_bytes()
    out, i = [], 0
    while i < len(raw):
        (n,) = struct.unpack_from("<I", raw, i)
        i += 4
        out.append(np.frombuffer(raw, dtype="<f4", count=n, offset=i).copy())
        i += 4 * n
    return out
