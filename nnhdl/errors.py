"""Exceptions that the CLI turns into one line on stderr and exit status 2."""

from __future__ import annotations

import os
import sys
from typing import Callable


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
    from .outputs import transaction

    for stream in (sys.stdout, sys.stderr):  # names that are not valid text must not crash a print
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
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
        # what the interrupt cut short (a simulator's unstarted coroutines) must not add warnings at exit
        import warnings

        warnings.simplefilter("ignore")
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except OSError as e:  # the environment refused a file operation nobody anticipated: still one line
        where = f"{e.filename}: " if e.filename else ""
        print(f"{prog}: error: {where}{_one_line(e.strerror or e)}", file=sys.stderr)
        return 2


def _silence_stdout() -> None:
    """The reader went away: drop what is still buffered instead of failing again at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
