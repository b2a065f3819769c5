"""Compile and run the emitted C: on the host (gcc) and on an emulated Cortex-M7 (QEMU).

Both builds use ``-std=c99 -Wall -Wextra -Werror`` on the generated code, so
an emitter change that produces a warning fails the check.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnhdl.errors import NnhdlError
from nnhdl.outputs import scratch

from .arith import arithmetic
from .cmsis import cmsis_headers, cmsis_library
from .files import write_files
from .layout import ExportResult
from .harness import (firmware_main, host_main, linker_script, parse_firmware_output, QemuResult, read_trace,
                      startup_files, testdata_c)
from .toolchain import ARM_FLAGS, HOST_FLAGS, WARN_FLAGS, require, run

__all__ = ["HostProgram", "build_host", "run_host", "build_arm", "run_qemu", "ArmBuild"]


def _uses_cmsis(result: ExportResult) -> bool:
    return any('#include "arm_math.h"' in t for t in result.files.values())


def _write_sources(result: ExportResult, workdir: Path, extra: dict[str, str]) -> None:
    """The emitted files and the test program's into ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    with scratch():  # build inputs, read by gcc right away
        write_files(workdir, {**result.files, **extra})


def _cmsis(result: ExportResult, target: str) -> tuple[list[str], list[str]]:
    """``(cflags, libraries)`` for the CMSIS-DSP calls of ``result`` (none: nothing)."""
    if not _uses_cmsis(result):
        return [], []
    cm = cmsis_library(target)
    return cm.cflags(), [str(cm.library)]


@dataclass
class HostProgram:
    exe: Path
    arith: str
    input_dim: int
    output_dim: int


def build_host(result: ExportResult, workdir: Path, prefix: str = "nnhdl", trace: bool = False) -> HostProgram:
    """Write the sources into ``workdir`` and compile them with the host gcc."""
    cc = require("gcc")
    model, arith = result.plan.model, result.plan.arith
    _write_sources(result, workdir, {"host_main.c": host_main(prefix, arith, trace)})
    cmsis_flags, libs = _cmsis(result, "host")
    cflags = [*HOST_FLAGS, *WARN_FLAGS, *cmsis_flags]
    if trace:
        cflags.append("-DNNHDL_TRACE_HOOK")
    exe = workdir / "host_model"
    run([cc, *cflags, "-o", str(exe), str(workdir / f"{prefix}_model.c"), str(workdir / "host_main.c"), *libs, "-lm"],
        what="host gcc build of the emitted C")
    return HostProgram(exe, arith, model.input_dim, model.output_dim)


def run_host(prog: HostProgram, x: np.ndarray, trace: bool = False) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """Stream ``x`` through the compiled program; returns outputs (and the call trace)."""
    work = prog.exe.parent
    fin, fout, ftrace = work / "in.bin", work / "out.bin", work / "trace.bin"
    dtype = arithmetic(prog.arith).dtype
    np.ascontiguousarray(x, dtype=dtype).tofile(fin)
    args = [str(prog.exe), str(fin), str(fout)] + ([str(ftrace)] if trace else [])
    run(args, what="running the host build")
    y = np.fromfile(fout, dtype=dtype).reshape(-1, prog.output_dim)
    if y.shape[0] != x.shape[0]:
        raise NnhdlError(f"host program produced {y.shape[0]} outputs for {x.shape[0]} inputs")
    tr = read_trace(ftrace) if trace else None
    return arithmetic(prog.arith).from_host(y), tr


@dataclass
class ArmBuild:
    elf: Path
    text: int
    data: int
    bss: int
    model_text: int  # bytes of the model object alone (code + constants)
    model_ram: int  # .data + .bss of the model object alone
    n_test: int


def _size(tool: str, path: Path) -> tuple[int, int, int]:
    out = run([tool, str(path)], what="arm-none-eabi-size").stdout.decode().splitlines()
    totals = [0, 0, 0]
    for line in out[1:]:
        parts = line.split()
        for i in range(3):
            totals[i] += int(parts[i])
    return totals[0], totals[1], totals[2]


def build_arm(result: ExportResult, workdir: Path, x_test: np.ndarray, prefix: str = "nnhdl") -> ArmBuild:
    """Cross-compile model + firmware for Cortex-M7 (QEMU mps2-an500)."""
    cc = require("arm-none-eabi-gcc")
    size = require("arm-none-eabi-size")
    arith = result.plan.arith
    _write_sources(result, workdir, {"fw_main.c": firmware_main(prefix, arith),
                                     "fw_testdata.c": testdata_c(x_test, arith, prefix)})
    cmsis_flags, libs = _cmsis(result, "arm")
    cflags = [*ARM_FLAGS, *WARN_FLAGS, *cmsis_flags]
    model_obj = workdir / f"{prefix}_model.o"
    run([cc, *cflags, "-c", str(workdir / f"{prefix}_model.c"), "-o", str(model_obj)],
        what="arm-none-eabi-gcc build of the emitted C")
    elf = workdir / "firmware.elf"
    srcs = [str(workdir / "fw_main.c"), str(workdir / "fw_testdata.c"), *map(str, startup_files())]
    run([cc, *cflags, "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-T", str(linker_script()),
         "-Wl,--gc-sections", "-o", str(elf), str(model_obj), *srcs, *libs],
        what="linking the Cortex-M7 firmware")
    text, data, bss = _size(size, elf)
    mt, md, mb = _size(size, model_obj)
    return ArmBuild(elf, text, data, bss, mt, md + mb, x_test.shape[0])


def measure_model(result: ExportResult, prefix: str = "nnhdl") -> tuple[int, int] | None:
    """(flash, RAM) bytes of the model object for Cortex-M7 -O3, or None without the toolchain."""
    import shutil
    import tempfile

    from .toolchain import cache_dir

    if not (shutil.which("arm-none-eabi-gcc") and shutil.which("arm-none-eabi-size")):
        return None
    cflags = [*ARM_FLAGS, *WARN_FLAGS]
    if _uses_cmsis(result):
        cflags += cmsis_headers("arm").cflags()  # compiling the model object needs no library
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        work = Path(tmp)
        for name, text in result.files.items():
            (work / name).write_text(text)
        obj = work / "model.o"
        run(["arm-none-eabi-gcc", *cflags, "-c", str(work / f"{prefix}_model.c"), "-o", str(obj)],
            what="arm-none-eabi-gcc build of the emitted C", timeout=900)
        text, data, bss = _size("arm-none-eabi-size", obj)
    return text + data, data + bss


def run_qemu(build: ArmBuild, arith: str, output_dim: int, timeout: float = 300) -> QemuResult:
    """Run the firmware on QEMU's Cortex-M7 with deterministic instruction counting."""
    qemu = require("qemu-system-arm")
    cmd = [qemu, "-M", "mps2-an500", "-nographic", "-monitor", "none", "-serial", "none",
           "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", str(build.elf)]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise NnhdlError(f"QEMU did not finish within {timeout:.0f} s (firmware hung?)") from None
    # QEMU prints semihosting console output (SYS_WRITE0) on its stderr.
    text = p.stderr.decode(errors="replace") + p.stdout.decode(errors="replace")
    if p.returncode != 0:
        raise NnhdlError(f"QEMU exited with status {p.returncode} (1: the firmware failed or faulted): "
                         f"{text[-1500:]}")
    return parse_firmware_output(text, arith, build.n_test, output_dim)
