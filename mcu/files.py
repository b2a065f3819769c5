"""Writing generated files: every file or none, so a failed export or build leaves nothing partial."""

from __future__ import annotations

from pathlib import Path

from nnhdl.errors import NnhdlError

__all__ = ["write_files"]


def write_files(out_dir: Path, files: dict[str, str]) -> None:
    """Write every file or none (:mod:`nnhdl.outputs`): a new folder appears only with all its files."""
    from nnhdl.outputs import staged_dir, transaction, write_atomically

    out_dir = Path(out_dir)
    if not out_dir.exists() and not out_dir.parent.is_dir():
        raise NnhdlError(f"{out_dir}: parent folder {out_dir.parent} does not exist")
    try:
        with transaction() as t:  # joins the command's transaction when there is one
            folder = staged_dir(out_dir)
            for name, text in files.items():
                target = folder / name
                staged_dir(target.parent)
                write_atomically(target, lambda f, text=text: f.write(text), mode="w")
            t.commit()
    except OSError as e:
        raise NnhdlError(f"{out_dir}: cannot write the C files there ({e.strerror or e})") from None

