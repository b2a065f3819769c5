"""Finding and running the external tools, with messages that say what to install.

Also owns the cache folder (``$NNHDL_CACHE`` or ``~/.cache/nnhdl``): it must
live outside ``/tmp`` and survive between sessions, because the CMSIS-DSP
sources and the compiled CMSIS libraries are kept there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from nnhdl.errors import NnhdlError

__all__ = ["cache_dir", "require", "run", "ARM_FLAGS", "HOST_FLAGS", "WARN_FLAGS"]

# The Daisy Seed's STM32H750: Cortex-M7 with double-precision FPU.
ARM_FLAGS = ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard", "-O3"]
WARN_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
HOST_FLAGS = ["-O2"]

_PACKAGES = {
    "gcc": "gcc",
    "arm-none-eabi-gcc": "gcc-arm-none-eabi (and libnewlib-arm-none-eabi)",
    "arm-none-eabi-size": "binutils-arm-none-eabi (comes with gcc-arm-none-eabi)",
    "arm-none-eabi-objdump": "binutils-arm-none-eabi (comes with gcc-arm-none-eabi)",
    "qemu-system-arm": "qemu-system-arm",
}


def cache_dir() -> Path:
    """Persistent cache for CMSIS-DSP sources and compiled libraries."""
    base = os.environ.get("NNHDL_CACHE")
    path = Path(base) if base else Path.home() / ".cache" / "nnhdl"
    path = path / "mcu"
    path.mkdir(parents=True, exist_ok=True)
    return path


def require(tool: str) -> str:
    """Absolute path of ``tool`` or an NnhdlError naming the Debian package."""
    found = shutil.which(tool)
    if not found:
        pkg = _PACKAGES.get(tool, tool)
        raise NnhdlError(f"{tool} not found on PATH; install the Debian package {pkg} "
                         f"(apt-get install --no-install-recommends {pkg.split()[0]})")
    return found


def run(cmd: Sequence[str], *, cwd: Path | None = None, what: str = "", timeout: float = 600,
        input_bytes: bytes | None = None) -> subprocess.CompletedProcess:
    """Run a tool; on failure raise NnhdlError with its output (compiler errors are the message)."""
    try:
        p = subprocess.run(list(cmd), cwd=cwd, capture_output=True, timeout=timeout, input=input_bytes)
    except subprocess.TimeoutExpired:
        raise NnhdlError(f"{what or cmd[0]}: timed out after {timeout:.0f} s") from None
    if p.returncode != 0:
        text = (p.stderr or b"").decode(errors="replace") + (p.stdout or b"").decode(errors="replace")
        tail = "\n".join(text.strip().splitlines()[-25:])
        raise NnhdlError(f"{what or cmd[0]} failed (exit {p.returncode}):\n{tail}")
    return p
