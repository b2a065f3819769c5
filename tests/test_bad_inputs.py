"""Issue 15: every bad input in ``tests/bad_inputs.py``, through the user's own command line.

For each case, in a fresh folder: exit status 2, exactly one line on stderr
naming the file, field or flag, no traceback, no new or changed file or
folder, at most 1 GiB of memory and 20 s.  The memory bound is enforced with
``RLIMIT_DATA`` in the child (``RLIMIT_AS`` cannot be used: JAX reserves
virtual address space far beyond what it touches) and the peak resident set
of the child (``wait4``) is checked too.

The second part runs a valid input of each kind next to the bad ones
(``NEIGHBOURS``): the validation must not refuse what is fine.

``boards.pmod status|load-weights`` talk to a local TCP socket
(``socket://127.0.0.1:PORT``, pyserial) served by :class:`StandInBoard`: it
stands in for the board's USB UART, which cannot exist here.  It speaks
UARTBone to a small register file with the nnhdl CSRs, and can hang up
after a number of frames, answer garbage or never answer.

``python tests/test_bad_inputs.py [--root DIR]`` runs the corpus against the
code in DIR (default: this checkout) and prints the count of cleanly handled
cases per class of the issue -- the before/after figures.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.bad_inputs import CASES, CLASSES, CSR_BASE, CSR_REGS, NEIGHBOURS, ROOT, Case, model  # noqa: E402

MEMORY_LIMIT = 1 << 30
WALL_LIMIT = 20.0


# -- the stand-in board ------------------------------------------------------------

class StandInBoard:
    """A UARTBone peer on 127.0.0.1 with the nnhdl registers (see the module docstring)."""

    def __init__(self, behaviour: str, shape_id: int = 0, n_weights: int = 0) -> None:
        self.behaviour = behaviour
        self.regs: dict[int, int] = {}
        self.addr_of: dict[str, int] = {}
        a = CSR_BASE
        for name, words in CSR_REGS:
            self.addr_of[name] = a
            a += 4 * words
        self._set("shape_id", shape_id, 2)
        self._set("n_weights", n_weights, 1)
        self._set("active_bank", 5 if behaviour == "bank-5" else 0, 1)
        self._set("cycles", 40, 1)
        self._set("cycles_max", 41, 1)
        self.image: dict[int, int] = {}
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _set(self, name: str, value: int, words: int) -> None:
        for i in range(words):
            self.regs[self.addr_of[name] + 4 * i] = (value >> (32 * (words - 1 - i))) & 0xFFFFFFFF

    @property
    def active_bank(self) -> int:
        return self.regs[self.addr_of["active_bank"]]

    def _serve(self) -> None:
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        with conn:
            if self.behaviour == "close":
                return
            limit = int(self.behaviour.rsplit("-", 1)[1]) if self.behaviour.startswith("close-after-") else None
            rng = np.random.default_rng(7)
            frames = 0
            f = conn.makefile("rb")
            while True:
                head = f.read(6)
                if len(head) < 6:
                    return
                if limit is not None and frames >= limit:
                    return
                frames += 1
                cmd, count, addr = head[0], head[1], int.from_bytes(head[2:6], "big") * 4
                if cmd in (1, 3):
                    data = f.read(4 * count)
                    words = [int.from_bytes(data[4 * i: 4 * i + 4], "big") for i in range(count)]
                    self._write(cmd, addr, words)
                    continue
                if self.behaviour == "silent":
                    continue
                if self.behaviour == "garbage":
                    reply = rng.integers(0, 256, 4 * count, dtype=np.uint8).tobytes()
                elif self.behaviour == "garbage-ff":
                    reply = b"\xff" * (4 * count)
                else:
                    reply = b"".join(self._read(addr + (4 * i if cmd == 2 else 0)).to_bytes(4, "big")
                                     for i in range(count))
                try:
                    conn.sendall(reply)
                except OSError:
                    return

    def _read(self, addr: int) -> int:
        if addr == self.addr_of["weight_readback"]:
            return self.image.get(self.regs.get(self.addr_of["weight_addr"], 0), 0)
        return self.regs.get(addr, 0)

    def _write(self, cmd: int, addr: int, words: list[int]) -> None:
        for i, w in enumerate(words):
            a = addr if cmd == 3 else addr + 4 * i
            if a == self.addr_of["weight_data"]:
                wa = self.addr_of["weight_addr"]
                self.image[self.regs.get(wa, 0)] = w & 0xFFFF
                self.regs[wa] = self.regs.get(wa, 0) + 1
            elif a == self.addr_of["pulse"] and w & 1:
                self.regs[self.addr_of["active_bank"]] ^= 1
            else:
                self.regs[a] = w

    def close(self) -> None:
        self.server.close()


def stand_in_for(behaviour: str, d: Path) -> StandInBoard:
    """A board built for ``m.npz`` of the corpus (the base model) with the given behaviour."""
    from nnhdl.model import Model

    base = d / ".base.npz"
    base.write_bytes(model())
    m = Model.load(base)
    base.unlink()
    return StandInBoard(behaviour, m.shape_id(), m.params)


# -- running one command ---------------------------------------------------------

@dataclass
class Outcome:
    status: int
    stdout: str
    stderr: str
    seconds: float
    max_rss: int  # bytes


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_LIMIT, MEMORY_LIMIT))


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, 9)
    except (ProcessLookupError, PermissionError):
        pass


def run_command(module: str, args: tuple, cwd: Path, env_extra: dict[str, str], root: Path = ROOT,
                timeout: float = WALL_LIMIT + 10) -> Outcome:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("NNHDL_CACHE", str(Path.home() / ".cache" / "nnhdl"))
    env.update(env_extra)
    start = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", module, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_limit_memory,
                         start_new_session=True)  # its own process group: tools it starts die with it
    out: dict[str, bytes] = {}
    readers = [threading.Thread(target=lambda k=k, s=s: out.__setitem__(k, s.read()), daemon=True)
               for k, s in (("out", p.stdout), ("err", p.stderr))]
    for r in readers:
        r.start()
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - start > timeout:
            _kill_group(p.pid)
        time.sleep(0.01)
    seconds = time.monotonic() - start
    _kill_group(p.pid)  # nothing it started may outlive it
    p.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join()
    return Outcome(p.returncode, out["out"].decode(errors="replace"), out["err"].decode(errors="replace"), seconds,
                   usage.ru_maxrss * 1024)


class Zygote:
    """A ``tests/zygote.py`` server: forks of a process with the project imported (see there why)."""

    def __init__(self, root: Path = ROOT) -> None:
        env = dict(os.environ, PYTHONPATH=str(root))
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("zygote.py"))], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert json.loads(self.proc.stdout.readline()).get("ready")
        self.lock = threading.Lock()

    def run(self, module: str, args: tuple, cwd: Path, env_extra: dict[str, str]) -> Outcome:
        env = dict(os.environ)
        env.setdefault("NNHDL_CACHE", str(Path.home() / ".cache" / "nnhdl"))
        env.update(env_extra)
        out, err = cwd.parent / f".{cwd.name}.out", cwd.parent / f".{cwd.name}.err"
        req = {"module": module, "args": [a if isinstance(a, str) else os.fsdecode(a) for a in args],
               "cwd": str(cwd), "env": env, "stdout": str(out), "stderr": str(err), "memory": MEMORY_LIMIT,
               "timeout": WALL_LIMIT + 10}
        with self.lock:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            ans = json.loads(self.proc.stdout.readline())
        r = Outcome(ans["status"], out.read_bytes().decode(errors="replace"), err.read_bytes().decode(errors="replace"),
                    ans["seconds"], ans["max_rss"])
        out.unlink()
        err.unlink()
        return r

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


_zygotes: dict[tuple[Path, int], Zygote] = {}


def zygote(root: Path = ROOT) -> Zygote:
    """One per thread (the before/after runner uses threads; pytest-xdist uses processes)."""
    key = (root, threading.get_ident())
    if key not in _zygotes:
        _zygotes[key] = Zygote(root)
    return _zygotes[key]


def snapshot(d: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``d`` with its size and modification time."""
    result = {}
    for p in sorted(d.rglob("*")):
        st = p.lstat()
        result[str(p.relative_to(d))] = (st.st_size if p.is_file() else -1, st.st_mtime_ns)
    return result


def _argv(args: tuple, port: int | None) -> tuple:
    if port is None:
        return args
    return tuple(a.replace("{port}", str(port)) if isinstance(a, str) else a for a in args)


def judge(case: Case, d: Path, root: Path = ROOT, fresh: bool = False) -> tuple[list[str], Outcome]:
    """Run one bad input; return what is wrong with the way it was handled (empty: clean).

    ``fresh``: in a new interpreter (``python -m``) instead of a fork of the zygote.
    """
    d = d / "case"
    d.mkdir()
    case.materialise(d)
    board = stand_in_for(case.peer, d) if case.peer else None
    before = snapshot(d)
    try:
        argv = _argv(case.args, board.port if board else None)
        r = (run_command(case.module, argv, d, case.env, root) if fresh
             else zygote(root).run(case.module, argv, d, case.env))
    finally:
        if board:
            board.close()
    problems = []
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    if r.status != case.status:
        problems.append(f"exit status {r.status}, expected {case.status}")
    if "Traceback" in r.stderr:
        problems.append("traceback")
    if len(lines) != 1:
        problems.append(f"{len(lines)} lines on stderr")
    elif case.names and case.names.lower() not in lines[0].lower():
        problems.append(f"stderr does not name {case.names!r}")
    after = snapshot(d)
    if after != before:
        changed = sorted(set(after.items()) ^ set(before.items()))
        problems.append(f"files changed: {[k for k, _ in changed][:4]}")
    if r.max_rss > MEMORY_LIMIT:
        problems.append(f"peak memory {r.max_rss >> 20} MiB")
    if r.seconds > WALL_LIMIT:
        problems.append(f"{r.seconds:.1f} s")
    if board is not None and case.module == "boards.pmod" and case.args[0] == "load-weights" and board.active_bank != \
            (5 if case.peer == "bank-5" else 0):
        problems.append("the active bank changed")
    return problems, r


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_cleanly(case: Case, tmp_path: Path) -> None:
    problems, r = judge(case, tmp_path)
    assert not problems, f"{problems}\nstderr: {r.stderr[-2000:]}"


FRESH = CASES[::40]


@pytest.mark.parametrize("case", FRESH, ids=[c.id for c in FRESH])
def test_bad_input_in_a_fresh_interpreter(case: Case, tmp_path: Path) -> None:
    """A sample of the corpus through a new ``python -m`` each: the zygote changes nothing that matters."""
    problems, r = judge(case, tmp_path, fresh=True)
    assert not problems, f"{problems}\nstderr: {r.stderr[-2000:]}"


NEIGHBOUR_CASES = [(kind, n, nb) for kind, nbs in NEIGHBOURS.items() for n, nb in enumerate(nbs)]


@pytest.mark.parametrize("kind, n, nb", NEIGHBOUR_CASES, ids=[f"{k}-{n}" for k, n, _ in NEIGHBOUR_CASES])
def test_valid_neighbour_still_works(kind, n, nb, tmp_path: Path) -> None:
    """No over-refusal: a valid input of each kind the corpus attacks goes through."""
    Case("ok", 0, nb.module, nb.args, dict(nb.files)).materialise(tmp_path)
    board = stand_in_for(nb.peer, tmp_path) if nb.peer else None
    try:
        r = run_command(nb.module, _argv(nb.args, board.port if board else None), tmp_path, {}, timeout=600)
    finally:
        if board:
            board.close()
    assert r.status == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    for rel in nb.creates:
        assert (tmp_path / rel).is_file(), f"{rel} missing"
    assert not list(tmp_path.rglob("*.partial")), "temporary files left behind"
    if board is not None and nb.args[0] == "load-weights":
        assert board.active_bank == 1 and "loaded" in r.stdout


def test_closed_stdout_is_quiet(tmp_path: Path) -> None:
    """``info --hw | head -1``: the reader leaves early; no BrokenPipeError traceback."""
    (tmp_path / "m.npz").write_bytes(model())
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run(f"{sys.executable} -m nnhdl info m.npz --hw | head -1", shell=True, cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.stdout.startswith("model corpus")
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, p.stderr


def test_undecodable_output_name_on_an_ascii_terminal(tmp_path: Path) -> None:
    """``run`` with an output path stdout cannot encode: the run succeeds, the name is escaped."""
    (tmp_path / "m.npz").write_bytes(model())
    np.save(tmp_path / "x.npy", np.zeros((4, 3), np.int16))
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONIOENCODING="ascii")
    p = subprocess.run([sys.executable, "-m", "nnhdl", "run", "--model", "m.npz", "--input", "x.npy", "--output",
                        "y\u00e9.npy"], cwd=tmp_path, env=env, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "y\u00e9.npy").is_file()


def test_interrupt_is_130_and_leaves_nothing(tmp_path: Path) -> None:
    """Ctrl-C in the middle of a simulation: exit 130, one line, neither the output nor the trace appears."""
    import signal

    (tmp_path / "m.npz").write_bytes(model())
    np.save(tmp_path / "x.npy", np.zeros((5000, 3), np.int16))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-m", "nnhdl", "run", "--model", "m.npz", "--input", "x.npy", "--output",
                          "y.npy", "--target", "rtl", "--vcd", "t.vcd"], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         # as from a terminal: a shell's background job (CI under `cmd &`) inherits SIGINT ignored
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".t.vcd.*")) and time.monotonic() < deadline:  # the simulation has started
        time.sleep(0.05)
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    lines = [l for l in err.splitlines() if l.strip() and not l.startswith("rtl/pysim")]
    assert lines == ["nnhdl: interrupted"], err
    assert sorted(f.name for f in tmp_path.iterdir()) == ["m.npz", "x.npy"]


def main(argv: list[str]) -> int:
    """Before/after counts: run every case against the code in ``--root`` and count the clean ones per class."""
    import argparse
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=str(ROOT))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", default=None)
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--match", default="", help="only the cases whose id contains this")
    args = ap.parse_args(argv)
    root = Path(args.root)

    def one(case: Case) -> tuple[Case, list[str]]:
        with tempfile.TemporaryDirectory(dir=args.tmp) as d:
            problems, _ = judge(case, Path(d), root)
        return case, problems

    clean: dict[int, int] = {k: 0 for k in CLASSES}
    total: dict[int, int] = {k: 0 for k in CLASSES}
    failures = {}
    with ThreadPoolExecutor(args.jobs) as ex:
        for case, problems in ex.map(one, [c for c in CASES if args.match in c.id]):
            total[case.cls] += 1
            clean[case.cls] += not problems
            if problems:
                failures[case.id] = problems
    for k in CLASSES:
        print(f"{k:>2} {CLASSES[k]:<48} {clean[k]:>4} / {total[k]:<4} clean")
    print(f"   {'all':<48} {sum(clean.values()):>4} / {sum(total.values())}")
    if args.json:
        Path(args.json).write_text(json.dumps({"clean": clean, "total": total, "failures": failures}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
