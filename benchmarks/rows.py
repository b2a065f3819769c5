"""One rule for benchmark rows: a row that fails prints why on its own line and the run goes on.

A benchmark is a table of independent measurements; one bad row (a check that
refuses, a tool that is missing) must not hide the rows after it.  ``Rows``
runs each measurement, prints either its figures or ``FAILED: reason``, and
:meth:`Rows.exit_status` is non-zero when any row failed, so scripts and CI
still notice.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any, Callable

from nnhdl.errors import NnhdlError

__all__ = ["Rows"]


class Rows:
    def __init__(self) -> None:
        self.failed: list[str] = []
        self.done = 0
        self.last_error = ""  # why the most recent failed row failed (for tables that list it again)

    def run(self, label: str, measure: Callable[[], Any], show: Callable[[Any], str]) -> Any | None:
        """Measure one row; print ``label  show(result)``, or ``label  FAILED: ...`` and return None."""
        try:
            result = measure()
        except KeyboardInterrupt:
            raise
        except NnhdlError as e:
            return self._fail(label, str(e))
        except Exception as e:  # noqa: BLE001 -- a benchmark row reports any failure and moves on
            where = traceback.extract_tb(e.__traceback__)[-1]
            return self._fail(label, f"{type(e).__name__}: {e} ({where.filename.rsplit('/', 1)[-1]}:{where.lineno})")
        self.done += 1
        print(f"{label}  {show(result)}", flush=True)
        return result

    def _fail(self, label: str, why: str) -> None:
        self.failed.append(label)
        self.last_error = why
        print(f"{label}  FAILED: {why}", flush=True)
        return None

    def exit_status(self) -> int:
        """0 when every row produced its figures; 1 (with a summary on stderr) otherwise."""
        if self.failed:
            print(f"{len(self.failed)} of {len(self.failed) + self.done} rows FAILED: " + "; ".join(self.failed),
                  file=sys.stderr)
            return 1
        return 0
