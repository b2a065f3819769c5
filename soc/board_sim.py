"""The eurorack-pmod SoC without the board: the board build's gateware in Verilator.

:func:`build_sim` makes the same SoC as :func:`soc.build.build` (same
:func:`soc.build.plan`, :func:`soc.build.core` and :class:`soc.litex_soc.PmodSoC`,
so the same UARTBone, CSR map, network, calibration, TDM serdes and I2C
sequencer), with only the FPGA primitives replaced (:class:`SimPrimitives`:
clocks from harness pins instead of PLLs, the open-drain I2C pins split into
pull-down enable and level).  The Verilator model is compiled once per
content hash into the cache (``$NNHDL_CACHE`` or ``~/.cache/nnhdl``).

The C++ harness (``board_sim.cpp``) drives the pins: a UART bridged bit by
bit to a TCP port (pyserial opens it as ``socket://localhost:PORT``), an
AK4619 model on the TDM pins (ADC slots play the input, DAC slots are
recorded), and I2C models of the AK4619, PCA9635, PCA9557 and EEPROM that
acknowledge and log every register write.  :class:`BoardSim` runs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

from nnhdl.errors import NnhdlError
from nnhdl.model import write_atomically

__all__ = ["SimPrimitives", "SimBuild", "build_sim", "BoardSim", "UART_BAUD", "UART_TIMEOUT_S",
           "write_board_files", "JACKS_PLUGGED",
           "EEPROM_SERIAL", "codec_adc", "demo_signal", "uart_upload_bits"]

UART_BAUD = 115200  # what PmodSoC builds (and what the board's USB UART runs at)
UART_TIMEOUT_S = 300.0  # host read timeout for a simulation (report.json): a 7 KB burst takes 30-90 s to simulate
JACKS_PLUGGED = 0xFF  # PCA9557 input byte with every jack plugged (bits 0..3: inputs 0..3)
EEPROM_SERIAL = bytes([0x29, 0x41, 0x53, 0x49, 0x4D, 0x31])  # 0xFA..0xFF: maker, device, "SIM1"
_HARNESS = "board_sim.cpp"
_TOP = "nnhdl_pmod_soc"
_PS = 1e12


class SimPrimitives:
    """Stand-ins for :class:`soc.litex_soc.ECP5Primitives`: clocks and reset from harness pins."""

    def crg(self, platform, board, sys_clk_hz: float, mclk_hz: float | None):
        from migen import ClockDomain
        from litex.gen import LiteXModule

        class _SimCRG(LiteXModule):
            def __init__(self) -> None:
                self.cd_sys = ClockDomain()
                rst = platform.request("sim_rst")
                self.comb += [self.cd_sys.clk.eq(platform.request("sys_clk")), self.cd_sys.rst.eq(rst)]
                self.actual_mhz = {"sys": sys_clk_hz / 1e6}
                if mclk_hz is not None:
                    self.cd_audio = ClockDomain()
                    self.comb += [self.cd_audio.clk.eq(platform.request("audio_clk")), self.cd_audio.rst.eq(rst)]
                    self.actual_mhz["audio"] = mclk_hz / 1e6

        return _SimCRG()

    def open_drain(self, soc, pads, name: str, oe, i=None) -> None:
        soc.comb += getattr(pads, name + "_oe").eq(oe)
        if i is not None:
            soc.comb += i.eq(getattr(pads, name + "_i"))


def _sim_io(cdc: bool) -> list:
    from litex.build.generic_platform import Pins, Subsignal

    io = [("sys_clk", 0, Pins(1)), ("sim_rst", 0, Pins(1)),
          ("serial", 0, Subsignal("tx", Pins(1)), Subsignal("rx", Pins(1))),
          ("eurorack_pmod", 0, *[Subsignal(n, Pins(1)) for n in (
              "mclk", "pdn", "i2c_sda_oe", "i2c_sda_i", "i2c_scl_oe", "sdin1", "sdout1", "lrck", "bick")])]
    if cdc:
        io.append(("audio_clk", 0, Pins(1)))
    return io


def _platform_class():
    from litex.build.generic_platform import GenericPlatform
    from litex.build.sim.common import sim_special_overrides

    class _SimPlatform(GenericPlatform):
        """Writes the SoC's Verilog (LiteX's simulation lowerings); Verilator is run by :func:`build_sim`."""

        def build(self, fragment, build_dir: str, build_name: str, run: bool = False, **kwargs):
            os.makedirs(build_dir, exist_ok=True)
            cwd = os.getcwd()
            os.chdir(build_dir)  # LiteX writes memory .init files next to the Verilog
            try:
                conv = self.get_verilog(fragment, name=build_name, special_overrides=sim_special_overrides)
                conv.write(build_name + ".v")
            finally:
                os.chdir(cwd)
            return conv.ns

    return _SimPlatform


@dataclass(frozen=True)
class SimBuild:
    """A compiled board simulation: the executable, its CSR map and the figures it was built with."""

    exe: Path
    csr_csv: Path
    sample_rate: int
    clocking: str
    sys_hz: float
    audio_hz: float
    model_desc: str
    hardware_manifest: dict
    model_id: int
    shape_id: int
    latency_frames: int  # DAC frame k carries the answer to ADC frame k - latency_frames (2 + D, soc.core)

    @property
    def bit_cycles(self) -> float:
        """System clock cycles per UART bit."""
        return self.sys_hz / UART_BAUD


def _cache_root() -> Path:
    from nnhdl.sim.verilator import cache_dir

    return cache_dir().parent / "board_sim"  # beside the network-only simulators


def _verilator() -> str:
    exe = shutil.which("verilator")
    if exe is None:
        raise NnhdlError("verilator is not installed; install it (Debian: apt-get install verilator)")
    return exe


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_sim(opts, *, log: Callable[[str], None] = _say) -> SimBuild:
    """``opts``: :class:`soc.build.BuildOptions` (board, model, rate, cal, clocking) -> a compiled simulation."""
    import contextlib
    import io
    import logging
    import tempfile

    from litex.soc.integration.builder import Builder

    from .build import CORE_NAME, core, plan
    from .litex_soc import PmodSoC
    from .pmod import to_verilog

    verilator = _verilator()
    p = plan(opts, log=log)
    harness = resources.files("soc").joinpath(_HARNESS).read_text()
    version = subprocess.run([verilator, "--version"], capture_output=True, text=True).stdout.strip()
    index = _cache_root() / "index" / f"{_input_key(p, harness, version)}.json"
    if index.is_file():  # the same inputs were generated and compiled before: skip the elaboration
        info = json.loads(index.read_text())
        built = _sim_build(p, _cache_root() / info["key"])
        if built.exe.is_file():
            p.net._MustUse__silence = True  # the planned network is not elaborated this time (Amaranth idiom)
            return built
    cdc = p.clocking == "cdc"
    text, ports = to_verilog(core(p), CORE_NAME)
    logging.basicConfig(level=logging.WARNING)  # before LiteX's own basicConfig(INFO): keep its tree quiet
    with tempfile.TemporaryDirectory(prefix="nnhdl-sim-") as tmp:
        gen = Path(tmp)
        (gen / f"{CORE_NAME}.v").write_text(text)
        platform = _platform_class()("sim", _sim_io(cdc))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            soc = PmodSoC(platform, p.board, p.model, gen / f"{CORE_NAME}.v", ports, sys_clk_hz=p.sys_mhz * 1e6,
                          sample_rate=p.rate, addr_width=p.net.addr_width, clocking=p.clocking,
                          primitives=SimPrimitives())
            Builder(soc, output_dir=str(gen), csr_csv=str(gen / "csr.csv"), compile_software=False,
                    compile_gateware=False).build(build_name=_TOP)
        sources = sorted(gen.joinpath("gateware").glob("*")) + [gen / f"{CORE_NAME}.v"]
        key = _content_key(harness, version, cdc, sources)
        dest = _cache_root() / key
        exe = dest / "obj_dir" / "board_sim"
        if not exe.is_file():
            t0 = time.monotonic()
            log(f"compiling the whole-SoC Verilator model ({p.clocking} clocking; takes a minute or two, "
                f"cached in {dest}) ...")
            work = Path(tempfile.mkdtemp(prefix=key + ".", dir=_ensure(dest.parent)))
            for s in sources:
                shutil.copy(s, work / s.name)
            shutil.copy(gen / "csr.csv", work / "csr.csv")
            (work / _HARNESS).write_text(harness)
            _compile(verilator, work, [s.name for s in sources], cdc)
            try:
                work.rename(dest)
            except OSError:  # another process finished the same build first
                shutil.rmtree(work, ignore_errors=True)
            log(f"compiled in {time.monotonic() - t0:.0f} s")
    _ensure(index.parent)
    write_atomically(index, lambda f: f.write(json.dumps({"key": key})), mode="w")
    return _sim_build(p, dest)


def _content_key(harness: str, version: str, cdc: bool, sources: list[Path]) -> str:
    """Hash of what Verilator compiles, less LiteX's build date (in comments, and in the identifier
    ROM's ``.init``: a cached model keeps the date of its first build)."""
    h = hashlib.sha256()
    for part in [harness, version, str(cdc)]:
        h.update(part.encode())
    for src in sources:
        if src.suffix != ".init":
            h.update(src.name.encode() + re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "", src.read_text()).encode())
    return h.hexdigest()[:20]


def _sim_build(p, dest: Path) -> SimBuild:

    m = p.model
    return SimBuild(dest / "obj_dir" / "board_sim", dest / "csr.csv", p.rate, p.clocking, p.sys_mhz * 1e6,
                    256.0 * p.rate, p.model_desc, m.hardware_manifest(), m.model_id(), m.shape_id(), p.latency_frames)


def _input_key(p, harness: str, verilator_version: str) -> str:
    """Hash of everything the generated Verilog depends on: the plan, the generator sources, tool versions."""
    from importlib import metadata

    h = hashlib.sha256()
    h.update(repr((p.model.fingerprint(), p.board.name, p.rate, p.clocking, p.sys_mhz, p.cal,
                   list(getattr(p.net, "lanes", [])), p.delay_frames, harness, verilator_version)).encode())
    for dist in ("amaranth", "litex", "migen"):
        try:
            h.update(f"{dist}={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            pass
    import nnhdl

    for pkg in (Path(__file__).parent, Path(nnhdl.__file__).parent):
        for f in sorted(pkg.rglob("*.py")):
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:24]


def _ensure(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return d


def _compile(verilator: str, work: Path, verilog: list[str], cdc: bool) -> None:
    cmd = [verilator, "--cc", "--exe", "--build", "-O3", "--x-assign", "fast", "--x-initial", "fast", "-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-COMBDLY",
           "--top-module", _TOP, "-j", "1", *[v for v in verilog if v.endswith(".v")], _HARNESS,
           "-o", "board_sim", "-CFLAGS", "-O2" + ("" if cdc else " -DSINGLE_CLOCK")]
    # (the PCH flag: see TOOLCHAIN.md; -O2 instead of Verilator's default -Os: ~2x faster simulation)
    env = dict(os.environ, MAKEFLAGS="CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O2 OPT_GLOBAL=-O2")
    r = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        tail = [l for l in (r.stderr + r.stdout).splitlines() if l.strip()][-5:]
        raise NnhdlError(f"verilator could not build the board simulation: {' | '.join(tail)}")


def write_board_files(sim: SimBuild, build_dir: Path, board: str = "ecpix5") -> None:
    """``csr.csv`` and ``report.json`` for the host tools (``boards.pmod status/load-weights --build-dir``)."""
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(build_dir / "csr.csv", lambda f: f.write(sim.csr_csv.read_text()), mode="w")
    report = {"board": f"{board} (Verilator simulation)", "simulation": True, "sample_rate": sim.sample_rate,
              "clocking": sim.clocking, "latency_frames": sim.latency_frames,
              "delay_frames": sim.latency_frames - 2,
              # how long the host waits for an answer: the simulation runs 20-100x slower than real time
              "uart_timeout_s": UART_TIMEOUT_S,
              "model": {"source": sim.model_desc, "model_id": f"{sim.model_id:016x}",
                        "shape_id": f"{sim.shape_id:016x}", "hardware_manifest": sim.hardware_manifest}}
    write_atomically(build_dir / "report.json", lambda f: f.write(json.dumps(report, indent=1)), mode="w")


def codec_adc(counts: np.ndarray) -> np.ndarray:
    """Jack counts ``[T, C<=4]`` -> the codec's raw ADC frames ``[T, 4]``: the pmod's input stage inverts.

    (-(-32768) saturates to 32767; after the board's inversion and >> 2 that is the same mantissa.)
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 2 or counts.shape[1] > 4:
        raise NnhdlError(f"the pmod has 4 inputs; got {counts.shape[1] if counts.ndim == 2 else '?'} channels")
    raw = np.zeros((len(counts), 4), dtype=np.int64)
    raw[:, : counts.shape[1]] = -counts
    return np.clip(raw, -32768, 32767).astype("<i2")


def demo_signal(rate: int, seconds: float = 1.0) -> np.ndarray:
    """What the sim plays without ``--input``: a 100 Hz triangle (+-4 V) on input 0, fixed CVs on 1 and 2."""
    n = int(round(rate * seconds))
    ph = (np.arange(n) % (rate // 100)) / (rate // 100)
    tri = np.round((1 - 4 * np.abs(ph - 0.5)) * 16000)
    return np.stack([tri, np.full(n, 6000), np.full(n, -3000), np.zeros(n)], axis=1).astype(np.int64)


def uart_upload_bits(n_weights: int) -> int:
    """UART bits :func:`soc.host.load_weights` sends and receives for ``n_weights`` (10 bits a byte).

    Shape/size/bank reads, address reset, the fixed-address bursts of 255 words,
    one (address write + read-back) per weight, the bank swap, the poll of the
    active bank and the model id write, as framed by :class:`soc.host.UARTBoneBus`.
    """
    read1, write1 = 6 + 4, 6 + 4  # one-word read: header + answer; one-word write: header + data
    reads = 2 + 1 + 1  # shape_id (2 words), n_weights, active_bank
    burst = sum(6 + 4 * min(255, n_weights - i) for i in range(0, n_weights, 255))
    verify = n_weights * (write1 + read1)
    swap = write1 + read1 + 2 * write1  # pulse, one poll of active_bank, model_id (2 words)
    return 10 * (reads * read1 + write1 + burst + verify + swap)


class BoardSim:
    """One run of a compiled simulation (a context manager; :meth:`stop` or leaving ends it).

    ``adc``: raw codec frames (:func:`codec_adc`), played once (or looped);
    ``frames``: DAC frames to record before stopping (None: until :meth:`stop`);
    ``port``: TCP port of the UART (0: any free one; None: no UART).
    """

    def __init__(self, build: SimBuild, workdir: Path, *, adc: np.ndarray | None = None, frames: int | None = None,
                 loop: bool = False, port: int | None = 0, jack: int = JACKS_PLUGGED,
                 progress: Callable[[int, int, float], None] | None = None) -> None:
        self.build, self.workdir, self.progress = build, Path(workdir), progress
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.dac_path, self.i2c_path = self.workdir / "dac.bin", self.workdir / "i2c.log"
        self.uart_path = self.workdir / "uart.log"
        args = [f"out={self.dac_path}", f"i2c_log={self.i2c_path}", f"uart_log={self.uart_path}",
                f"frames={-1 if frames is None else frames}", f"loop={int(loop)}", f"jack={jack}",
                f"port={-1 if port is None else port}", f"serial={EEPROM_SERIAL.hex()}",
                f"sys_half={round(_PS / (2 * build.sys_hz))}", f"audio_half={round(_PS / (2 * build.audio_hz))}",
                f"bit_cycles={build.bit_cycles:.6f}"]
        if adc is not None:
            np.asarray(adc, dtype="<i2").tofile(self.workdir / "adc.bin")
            args.append(f"in={self.workdir / 'adc.bin'}")
        self.args = args
        self.port: int | None = None
        self.stats: dict[str, float] = {}
        self.proc: subprocess.Popen | None = None
        self._errors: list[str] = []

    def __enter__(self) -> "BoardSim":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        import threading

        self.proc = subprocess.Popen([str(self.build.exe), *self.args], cwd=self.build.exe.parent.parent,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        ready, running = threading.Event(), threading.Event()

        def reader() -> None:
            for line in self.proc.stderr:
                word, *rest = line.split() or [""]
                if word == "listening":
                    self.port = int(rest[0])
                elif word == "running":
                    running.set()
                    ready.set()
                elif word in ("progress", "done"):
                    self.stats = {"frames": int(rest[0]), "cycles": int(rest[1]), "seconds": float(rest[2])}
                    if self.progress and word == "progress":
                        self.progress(*[self.stats[k] for k in ("frames", "cycles", "seconds")])
                elif line.strip():
                    self._errors.append(line.strip().removeprefix("error: "))
            ready.set()

        self._reader = threading.Thread(target=reader, daemon=True)
        self._reader.start()
        ready.wait()
        if not running.is_set():
            # stderr closed before "running": the process is exiting; reap it rather than poll(), which can
            # still see it alive for a moment (a CI run lost this race once).
            self.proc.wait()
            self._reader.join()
        if self.proc.poll() is not None and self.proc.returncode != 0:
            raise NnhdlError(f"the board simulation did not start: {'; '.join(self._errors) or 'no message'}")

    def wait(self, timeout: float | None = None) -> dict[str, float]:
        """Until the requested frames are recorded; returns frames, cycles and wall seconds."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise NnhdlError(f"the board simulation did not finish within {timeout} s") from None
        self._reader.join()
        if self.proc.returncode != 0:
            raise NnhdlError(f"the board simulation failed: {'; '.join(self._errors) or self.proc.returncode}")
        return self.stats

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self._reader.join()

    @property
    def frames(self) -> int:
        return self.stats.get("frames", 0)

    def dac(self) -> np.ndarray:
        """DAC frames recorded so far, ``[T, 4]`` int64 counts."""
        if not self.dac_path.exists():
            return np.zeros((0, 4), np.int64)
        raw = np.fromfile(self.dac_path, dtype="<i2")
        return raw[: len(raw) // 4 * 4].astype(np.int64).reshape(-1, 4)

    def i2c_log(self) -> list[tuple[str, int, int, int]]:
        """``("write"|"read", address, register, value)`` in bus order (and ``("nack", address, -1, -1)``)."""
        out = []
        text = self.i2c_path.read_text() if self.i2c_path.exists() else ""
        # the simulator may be mid-line: only complete lines count
        for line in text.split("\n")[:-1]:
            if not line.strip():
                continue
            kind, *vals = line.split()
            nums = [int(v, 16) for v in vals]
            out.append((kind, *nums) if kind != "nack" else (kind, nums[0], -1, -1))
        return out

    def uart_log(self) -> list[bytes]:
        """Bytes the FPGA received from each TCP connection, one entry per connection."""
        text = self.uart_path.read_text() if self.uart_path.exists() else ""
        return [bytes.fromhex(line) for line in text.split("\n") if line]
