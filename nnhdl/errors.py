"""Exceptions that the CLI turns into one line on stderr and exit status 2."""


class NnhdlError(Exception):
    """A user-facing error: bad input, missing tool, unsupported request.

    The message must say what is wrong (naming the field, file or tool) and,
    where possible, what to do about it.  No traceback is shown for these.
    """


class ModelError(NnhdlError):
    """A model file or in-memory model violates the nnhdl-model format."""
