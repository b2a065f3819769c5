"""The real CMSIS-DSP C sources, fetched once and compiled once per machine.

Sources: the ``cmsisdsp`` *source distribution* from PyPI (the only registry
that carries CMSIS-DSP), downloaded with ``pip download`` into the cache
folder on first use.  Only the functions the emitted programs call are
compiled, into one static library per (target, flags, compiler, sources)
combination; the library's file name holds a hash of all of these, so a
changed compiler or flag rebuilds and concurrent test workers never see a
half-written library (build in a temporary folder, then rename).

Host build: ``gcc -D__GNUC_PYTHON__`` (CMSIS-DSP's portable C, as the
``cmsisdsp`` Python package builds it).  Cortex-M7 build: the CMSIS Core
headers are not in the distribution, so ``mcu/cmsis_shim/cmsis_compiler.h``
stands in for them, mapping the few DSP intrinsics to the compiler's ACLE
header (see that file).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nnhdl.errors import NnhdlError

from .templates import SHIM_DIR
from .toolchain import ARM_FLAGS, cache_dir, require, run

__all__ = ["CMSIS_VERSION", "cmsis_sources", "cmsis_library", "cmsis_headers", "CmsisHeaders", "CmsisBuild", "SOURCES"]

CMSIS_VERSION = "1.10.3"
SOURCES = (
    "BasicMathFunctions/arm_dot_prod_q15.c",
    "BasicMathFunctions/arm_dot_prod_f32.c",
    "BasicMathFunctions/arm_add_f32.c",
    "BasicMathFunctions/arm_clip_f32.c",
    "MatrixFunctions/arm_mat_mult_f32.c",
)
#: target -> (compiler, archiver, code generation flags of the library; its defines are the headers')
_LIBRARY_TOOLS = {"host": ("gcc", "ar", ["-O2", "-ffp-contract=off"]),
                  "arm": ("arm-none-eabi-gcc", "arm-none-eabi-ar", ARM_FLAGS)}


@dataclass(frozen=True)
class CmsisHeaders:
    """Include folders and defines a program calling CMSIS-DSP compiles with, for one target."""

    includes: list[Path]
    defines: list[str]

    def cflags(self) -> list[str]:
        """The compiler flags: CMSIS-DSP's own headers are not -Wextra clean, so they are system headers."""
        return [f"-isystem{p}" for p in self.includes] + self.defines


@dataclass(frozen=True)
class CmsisBuild(CmsisHeaders):
    """:class:`CmsisHeaders` and the static library for one target."""

    library: Path


def cmsis_headers(target: str) -> CmsisHeaders:
    """Include folders and defines for ``host`` or ``arm`` (fetches the sources, compiles nothing)."""
    src = cmsis_sources()
    includes = [src / "Include", src / "PrivateInclude"]
    if target == "host":
        return CmsisHeaders(includes, ["-D__GNUC_PYTHON__", "-DCMSISDSP"])
    if target == "arm":
        return CmsisHeaders(includes + [SHIM_DIR], ["-DARM_MATH_LOOPUNROLL"])
    raise ValueError(target)


def cmsis_sources(version: str = CMSIS_VERSION) -> Path:
    """Folder of the unpacked cmsisdsp sdist (downloaded on first use)."""
    root = cache_dir()
    dest = root / f"cmsisdsp-{version}"
    if (dest / "Include" / "arm_math.h").is_file():
        return dest
    print(f"mcu: fetching CMSIS-DSP sources (cmsisdsp {version} source distribution) into {root} ...",
          file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "cmsisdsp",
               f"cmsisdsp=={version}", "-d", tmp, "-q"]
        try:
            run(cmd, what="pip download cmsisdsp", timeout=900)
        except NnhdlError as e:
            raise NnhdlError(f"cannot fetch the CMSIS-DSP sources with pip (network?): {e}") from None
        archives = list(Path(tmp).glob("cmsisdsp-*.tar.gz"))
        if not archives:
            raise NnhdlError("pip download cmsisdsp produced no source archive")
        with tarfile.open(archives[0]) as tar:
            # members are plain files of a PyPI sdist; refuse anything odd
            members = [m for m in tar.getmembers() if not (m.name.startswith("/") or ".." in m.name)]
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse links/devices too
                tar.extractall(tmp, members=members, filter="data")
            else:
                tar.extractall(tmp, members=members)
        unpacked = Path(tmp) / f"cmsisdsp-{version}"
        try:
            os.replace(unpacked, dest)
        except OSError:
            if not (dest / "Include" / "arm_math.h").is_file():  # lost a race with another worker: fine
                raise
    return dest


def _compiler_id(cc: str) -> str:
    return subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.splitlines()[0]


def cmsis_library(target: str) -> CmsisBuild:
    """Compile (once) the CMSIS-DSP functions nnhdl calls, for ``host`` or ``arm``."""
    headers = cmsis_headers(target)
    src, includes = cmsis_sources(), headers.includes
    compiler, ar, codegen = _LIBRARY_TOOLS[target]
    cc, flags = require(compiler), [*codegen, *headers.defines]
    h = hashlib.sha256()
    h.update(repr((target, flags, _compiler_id(cc), CMSIS_VERSION)).encode())
    for rel in SOURCES:
        h.update((src / "Source" / rel).read_bytes())
    h.update((SHIM_DIR / "cmsis_compiler.h").read_bytes())
    lib = cache_dir() / f"libcmsisdsp-nnhdl-{target}-{h.hexdigest()[:16]}.a"
    if not lib.is_file():
        with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
            objs = []
            for rel in SOURCES:
                obj = Path(tmp) / (Path(rel).stem + ".o")
                run([cc, *flags, *[f"-I{p}" for p in includes], "-c", str(src / "Source" / rel), "-o", str(obj)],
                    what=f"compiling CMSIS-DSP {rel} for {target}")
                objs.append(str(obj))
            tmp_lib = Path(tmp) / lib.name
            run([shutil.which(ar) or ar, "rcs", str(tmp_lib), *objs], what="ar")
            os.replace(tmp_lib, lib)
    return CmsisBuild(headers.includes, headers.defines, lib)
