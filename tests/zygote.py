"""Run ``python -m MODULE ARGS`` in a fork of a process that has the project already imported.

Hundreds of bad inputs each paying 3 s of ``import jax`` would take the CI
half an hour.  Every command here still runs in its own process -- a fresh
fork, with its own folder, environment, memory limit, file descriptors and
exit status -- through ``runpy`` exactly as ``python -m`` runs it; only the
imports are shared, and nothing a command does can leak into the next one.

Protocol: one JSON request per line on stdin, one JSON answer per line on stdout.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import runpy
import signal
import sys
import time
import warnings

#: What the entry points import; loaded once, before any fork.
PRELOAD = ("numpy", "scipy.io.wavfile", "nnhdl.cli", "nnhdl.model", "nnhdl.reference", "nnhdl.reference_target",
           "nnhdl.sim.target", "nnhdl.sim.pysim", "nnhdl.hdl.network", "nnhdl.synth", "mcu.export", "mcu.check",
           "mcu.target", "boards.pmod", "soc.host", "soc.build", "soc.calibration", "training.train",
           "training.evaluate", "training.import_qkeras", "serial")


def _child(req: dict) -> None:
    """In the fork: become ``python -m MODULE ARGS`` in the request's folder."""
    os.setsid()
    limit = req["memory"]
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    for fd, path in ((1, req["stdout"]), (2, req["stderr"])):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(f, fd)
        os.close(f)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    sys.argv = [req["module"], *req["args"]]
    # runpy notices the preloaded module; harmless here (each fork runs it once), so not worth a line on stderr
    warnings.filterwarnings("ignore", message=".*found in sys.modules after import of package", category=RuntimeWarning)
    code = 0
    try:
        runpy.run_module(req["module"], run_name="__main__", alter_sys=True)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
    except BaseException:  # what the interpreter would do with an uncaught exception
        sys.excepthook(*sys.exc_info())
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    os._exit(code)


def serve() -> None:
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    out = sys.stdout
    print(json.dumps({"ready": True}), file=out, flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(req)
        deadline = start + req["timeout"]
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.005)
        try:
            os.killpg(pid, signal.SIGKILL)  # nothing it started may outlive it
        except (ProcessLookupError, PermissionError):
            pass
        print(json.dumps({"status": os.waitstatus_to_exitcode(status), "seconds": time.monotonic() - start,
                          "max_rss": usage.ru_maxrss * 1024}), file=out, flush=True)


if __name__ == "__main__":
    serve()
