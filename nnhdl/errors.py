"""Exceptions that the CLI turns into one line on stderr and exit status 2."""

from __future__ import annotations

import sys
from typing import Callable


class NnhdlError(Exception):
    """A user-facing error: bad input, missing tool, unsupported request.

    The message must say what is wrong (naming the field, file or tool) and,
    where possible, what to do about it.  No traceback is shown for these.
    """


class ModelError(NnhdlError):
    """A model file or in-memory model violates the nnhdl-model format."""


def run_cli(prog: str, body: Callable[[], int]) -> int:
    """Run a command's body with the project's error contract.

    Every ``python -m ...`` entry point goes through here, so a user-facing
    error is always one line ``PROG: error: ...`` on stderr and exit status 2
    (Ctrl-C: 130), never a traceback.
    """
    try:
        return body()
    except NnhdlError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
