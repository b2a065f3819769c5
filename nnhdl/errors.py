"""Exceptions that the CLI turns into one line on stderr and exit status 2."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Callable, Iterator


class NnhdlError(Exception):
    """A user-facing error: bad input, missing tool, unsupported request.

    The message must say what is wrong (naming the field, file or tool) and,
    where possible, what to do about it.  No traceback is shown for these.
    """


class ModelError(NnhdlError):
    """A model file or in-memory model violates the nnhdl-model format."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def run_cli(prog: str, body: Callable[[], int]) -> int:
    """Run a command's body with the project's error contract.

    Every ``python -m ...`` entry point goes through here, so a user-facing
    error is always one line ``PROG: error: ...`` on stderr and exit status 2
    (Ctrl-C: 130), never a traceback.  Outputs are staged
    (:mod:`nnhdl.outputs`) and appear only when the body returns 0.  A
    closed stdout (``... | head``) ends the command quietly, as SIGPIPE would.
    """
    for stream in (sys.stdout, sys.stderr):  # names that are not valid text must not crash a print
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    with _interrupt_that_sticks() as handled:
        try:
            return _contract(prog, body, handled)
        except KeyboardInterrupt:  # a repeat of the interrupt landed while the first was being handled
            return _interrupted(prog, handled)


def _contract(prog: str, body: Callable[[], int], handled: Callable[[], None]) -> int:
    from .outputs import transaction

    try:
        with transaction() as outputs:
            status = body()
            if status == 0:
                outputs.commit()
            return status
    except NnhdlError as e:
        print(f"{prog}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return _interrupted(prog, handled)
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except OSError as e:  # the environment refused a file operation nobody anticipated: still one line
        where = f"{e.filename}: " if e.filename else ""
        print(f"{prog}: error: {where}{_one_line(e.strerror or e)}", file=sys.stderr)
        return 2


def _interrupted(prog: str, handled: Callable[[], None]) -> int:
    handled()
    # what the interrupt cut short (a simulator's unstarted coroutines) must not add warnings at exit
    import warnings

    warnings.simplefilter("ignore")
    print(f"{prog}: interrupted", file=sys.stderr)
    return 130


#: seconds between repeats of a Ctrl-C that has not reached ``run_cli`` yet
INTERRUPT_REPEAT_S = 0.5


@contextlib.contextmanager
def _interrupt_that_sticks() -> Iterator[Callable[[], None]]:
    """Ctrl-C that cannot be lost: after the first SIGINT, KeyboardInterrupt is raised again every
    :data:`INTERRUPT_REPEAT_S` until ``run_cli`` has handled it, except while the first one is still
    propagating (its cleanup must not be cut short).

    CPython silently drops an exception raised where C code clears errors (a dict lookup running a
    Python ``__eq__``, a finalizer), and Amaranth runs Python ``__hash__``/``__eq__`` and finalises
    async generators all the time, so a lone KeyboardInterrupt was once lost and the simulation ran
    on (seen in CI under load).  Yields the function that stops the repeats.  Only in the main
    thread and only over Python's default SIGINT handler; anything else is left as it is.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield lambda: None
        return

    armed: list = []  # the SIGALRM handler replaced once the first interrupt arrives (nothing is touched before)

    def stop() -> None:
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def again(signum, frame):
        exc = sys.exc_info()[1]
        while exc is not None:  # the first interrupt is still on its way out (cleanup is running): let it be
            if isinstance(exc, KeyboardInterrupt):
                return
            exc = exc.__context__
        raise KeyboardInterrupt

    def on_interrupt(signum, frame):
        if not armed:
            armed.append(signal.signal(signal.SIGALRM, again))
            signal.setitimer(signal.ITIMER_REAL, INTERRUPT_REPEAT_S, INTERRUPT_REPEAT_S)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield stop
    finally:
        stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if armed:
            signal.signal(signal.SIGALRM, armed[0])


def _silence_stdout() -> None:
    """The reader went away: drop what is still buffered instead of failing again at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
