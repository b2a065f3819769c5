"""Every registered activation provides every back end's piece, and each piece computes the op's integers.

Enumerates :data:`nnhdl.ops.ACTIVATIONS`: a new op is checked here without being named.  Each piece
runs on a small input and is compared with the op's own integer definition (``apply``): the gates
in amaranth.sim, the q412 and float32 C compiled with the host gcc, the JAX forward in float64.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from nnhdl.errors import NnhdlError
from nnhdl.fixedpoint import QFormat
from nnhdl.ops import ACTIVATIONS, Activation, ActivationCost, activation, register

OPS = sorted(ACTIVATIONS)
SMALL = QFormat(8, 4)  # every mantissa, in the simulator
Q412 = QFormat(16, 12)


def _relu_max(op: Activation, fmt: QFormat) -> list[int | None]:
    return [None, fmt.max_int // 3] if op.takes_relu_max else [None]


def test_registry_lookup_and_refusals():
    assert {"none", "relu", "tanh"} <= set(ACTIVATIONS)
    with pytest.raises(NnhdlError, match="unknown activation 'gelu'; known: " + ", ".join(ACTIVATIONS)):
        activation("gelu")
    with pytest.raises(NnhdlError, match="already registered"):
        register(ACTIVATIONS["relu"])

    class Half(Activation):
        name = "half"

        def apply(self, y, fmt, relu_max=None):
            return y >> 1

    with pytest.raises(NnhdlError, match="lacks apply_float, gates"):
        register(Half())
    assert "half" not in ACTIVATIONS


@pytest.mark.parametrize("name", OPS)
def test_every_piece_is_provided(name):
    op = ACTIVATIONS[name]
    for piece in Activation.PIECES:
        assert getattr(type(op), piece) is not getattr(Activation, piece), f"{name} lacks {piece}"
    c = op.cost(Q412)
    assert isinstance(c, ActivationCost) and min(c.lut, c.ff, c.rom_bits, c.mult18, c.stages) >= 0


def test_registry_imports_neither_amaranth_nor_jax():
    code = ("import sys, nnhdl.ops, nnhdl.reference, mcu.emit_q412, mcu.emit_f32\n"
            "bad = [m for m in ('amaranth', 'jax') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", OPS)
def test_apply_stays_in_format(name):
    op = ACTIVATIONS[name]
    for fmt in (SMALL, Q412, QFormat(16, 15)):
        y = np.arange(fmt.min_int, fmt.max_int + 1)
        for rm in _relu_max(op, fmt):
            out = op.apply(y, fmt, rm)
            assert out.dtype == np.int64 and out.min() >= fmt.min_int and out.max() <= fmt.max_int
            assert np.all(np.diff(out) >= 0)  # monotone, as the float error bound needs
            if op.nonnegative:
                assert out.min() >= 0
            f = op.apply_float(y / fmt.scale, fmt, rm)
            assert np.all(np.diff(f) >= 0) and np.all(np.abs(np.diff(f)) <= np.diff(y / fmt.scale) + 1e-15)


@pytest.mark.parametrize("name", OPS)
def test_gates_equal_apply(name):
    """Every mantissa of a small format through the op's gates, one per cycle, ``pipeline_stages`` late."""
    from amaranth import ClockDomain, Const, Module, Signal, signed
    from amaranth.sim import Simulator

    op = ACTIVATIONS[name]
    fmt = SMALL
    stages = op.pipeline_stages
    assert op.cost(fmt).stages == stages
    values = list(range(fmt.min_int, fmt.max_int + 1))
    for rm in _relu_max(op, fmt):
        m = Module()
        m.domains.sync = ClockDomain()
        y, out = Signal(signed(fmt.width)), Signal(signed(fmt.width))
        m.d.comb += out.eq(op.gates(m, y, Const(1), fmt, rm))
        got = []

        async def bench(ctx):
            for k in range(len(values) + max(stages - 1, 0)):
                ctx.set(y, values[min(k, len(values) - 1)])
                if not stages:
                    got.append(ctx.get(out))
                await ctx.tick()
                if stages and k >= stages - 1:
                    got.append(ctx.get(out))

        sim = Simulator(m)
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.run()
        assert got == op.apply(np.array(values), fmt, rm).tolist(), rm


def _run_c(tmp_path, name: str, text: str) -> str:
    src = tmp_path / f"{name}.c"
    src.write_text(text)
    exe = tmp_path / name
    subprocess.run(["gcc", "-O2", "-std=c99", str(src), "-o", str(exe), "-lm"], check=True)
    return subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs a host gcc")
@pytest.mark.parametrize("name", OPS)
def test_q412_c_equals_apply(name, tmp_path):
    op = ACTIVATIONS[name]
    fmt = Q412
    low = op.c_q412_low(fmt)
    for rm in _relu_max(op, fmt):
        text = ("#include <stdint.h>\n#include <stdio.h>\n"
                "static inline int32_t nnhdl_min(int32_t a, int32_t b) { return a < b ? a : b; }\n"
                + op.c_q412_helpers(fmt) +
                f"int main(void) {{\n    for (int32_t v = {fmt.min_int}; v <= {fmt.max_int}; v++) {{\n"
                f"        const int32_t y = v < {low} ? {low} : v;  /* the emitter's fused saturation */\n"
                f"        printf(\"%ld\\n\", (long)({op.c_q412('y', fmt, rm)}));\n    }}\n    return 0;\n}}\n")
        got = [int(s) for s in _run_c(tmp_path, f"q{rm}", text).split()]
        assert got == op.apply(np.arange(fmt.min_int, fmt.max_int + 1), fmt, rm).tolist(), rm


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs a host gcc")
@pytest.mark.parametrize("name", OPS)
def test_f32_c_equals_emulation_within_error(name, tmp_path):
    op = ACTIVATIONS[name]
    fmt = Q412
    rng = np.random.default_rng(3)
    x = np.concatenate([np.arange(fmt.min_int, fmt.max_int + 1, 7) / fmt.scale,
                        rng.normal(0, 3, 4000), [0.0, -0.0, 4.0, -4.0, 3.9999999, 1e-30, 60.0]]).astype(np.float32)
    for rm in _relu_max(op, fmt):
        body = "\n".join("        " + s for s in op.c_f32("a", fmt, rm))
        text = ("#include <math.h>\n#include <stdint.h>\n#include <stdio.h>\n#include <string.h>\n"
                + op.c_f32_helpers(fmt) +
                "int main(void) {\n    uint32_t u;\n    while (scanf(\"%u\", &u) == 1) {\n"
                "        float a;\n        memcpy(&a, &u, 4);\n" + body + "\n"
                "        memcpy(&u, &a, 4);\n        printf(\"%u\\n\", u);\n    }\n    return 0;\n}\n")
        src = tmp_path / f"f{rm}.c"
        src.write_text(text)
        exe = tmp_path / f"f{rm}"
        subprocess.run(["gcc", "-O2", "-std=c99", str(src), "-o", str(exe), "-lm"], check=True)
        out = subprocess.run([str(exe)], input="\n".join(str(v) for v in x.view(np.uint32)), check=True,
                             capture_output=True, text=True).stdout
        got = np.array([int(s) for s in out.split()], np.uint32).view(np.float32)
        want = op.f32_emulate(x, fmt, rm)
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), rm
        ideal = op.apply_float(x.astype(np.float64), fmt, rm)
        assert np.all(np.abs(got.astype(np.float64) - ideal) <= op.f32_error(2.0 ** -24)), rm


@pytest.mark.parametrize("name", OPS)
def test_jax_equals_apply(name):
    import jax.numpy as jnp

    import training.quantisers  # noqa: F401  (turns on float64, as training does)

    op = ACTIVATIONS[name]
    for fmt in (SMALL, Q412):
        y = np.arange(fmt.min_int, fmt.max_int + 1)
        for rm in _relu_max(op, fmt):
            got = np.asarray(op.jax(jnp.asarray(y / fmt.scale, jnp.float64), fmt, rm)) * fmt.scale
            assert np.array_equal(got, op.apply(y, fmt, rm).astype(np.float64)), (fmt, rm)
