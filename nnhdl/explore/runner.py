"""Run a batch of points on an engine: a local process pool or a Dask cluster, the cache in front.

The client (this process) owns the cache: workers only compute and return
results, and each result is written to disk as it arrives, so an
interrupted sweep loses only the points still running.  The outcome is a
dict by point id, which callers read in sorted id order: the tables cannot
depend on the engine or on which point finished first.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .cache import Cache

__all__ = ["Engine", "Task", "run_batch", "Progress"]

#: seconds to wait for a Dask scheduler before giving up with one line
CONNECT_TIMEOUT = 20
#: what a worker runs: picklable by name, so a Dask worker on another machine imports the same function
EVALUATE = "nnhdl.explore.evaluate:evaluate_point"
#: the Dask worker resource every task holds one of while it runs: training and place-and-route are each
#: CPU-bound on one thread, so a worker started with ``--resources cores=N`` runs at most N of them at once,
#: whatever its thread count (two P&R runs never share a core)
CORES = "cores"


@dataclass(frozen=True)
class Task:
    """One point to evaluate: its id, cache key and the worker's argument."""

    point_id: str
    key: str
    arg: dict[str, Any]
    function: str = EVALUATE


@dataclass
class Engine:
    """Where points run: ``workers`` local processes ("spawn": JAX does not survive fork), or a Dask
    scheduler at ``dask`` (one task per point)."""

    workers: int = 1
    dask: str | None = None
    evaluations: int = 0  # points actually computed (not from the cache) so far
    _pool: Any = field(default=None, repr=False)
    _client: Any = field(default=None, repr=False)

    def describe(self) -> str:
        return f"Dask scheduler {self.dask}" if self.dask else f"{self.workers} local process" + \
            ("es" if self.workers != 1 else "")

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def submit_all(self, calls: list[tuple[str, dict[str, Any]]]) -> Iterable[tuple[int, dict[str, Any]]]:
        """Run each ``(module:function, argument)``; yield ``(index, result)`` in whatever order they finish."""
        if not calls:
            return
        if self.dask:
            yield from self._dask(calls)
        else:
            yield from self._local(calls)

    def _local(self, calls: list[tuple[str, dict[str, Any]]]):
        import concurrent.futures as cf
        import multiprocessing

        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(max_workers=self.workers,
                                                mp_context=multiprocessing.get_context("spawn"))
        futures = {self._pool.submit(call, fn, a): n for n, (fn, a) in enumerate(calls)}
        for f in cf.as_completed(futures):
            yield futures[f], f.result()

    def connect(self) -> None:
        """Reach the Dask scheduler (once); one clear line when it cannot be reached."""
        from ..errors import NnhdlError

        if self._client is not None:
            return
        try:
            from dask.distributed import Client
        except ImportError:
            raise NnhdlError("--dask needs dask.distributed; pip install 'nnhdl[explore]'") from None
        try:
            self._client = Client(self.dask, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as e:
            raise NnhdlError(f"--dask {self.dask}: cannot reach the scheduler ({e})") from None

    def _workers(self) -> list[dict[str, Any]]:
        self.connect()
        return list(self._client.scheduler_info().get("workers", {}).values())

    def _cores_declared(self, workers: list[dict[str, Any]]) -> bool:
        """Whether every worker declares the :data:`CORES` resource (a task asking for a resource that no
        worker has would wait for ever, so the engine asks only when all of them have it)."""
        return bool(workers) and all(CORES in (w.get("resources") or {}) for w in workers)

    def parallel(self) -> int:
        """How many points run at once: the pool's processes, or the cluster's cores (else its threads)."""
        if not self.dask:
            return self.workers
        workers = self._workers()
        if self._cores_declared(workers):
            return max(1, int(sum(w["resources"][CORES] for w in workers)))
        return max(1, sum(int(w.get("nthreads", 1)) for w in workers))

    def _dask(self, calls: list[tuple[str, dict[str, Any]]]):
        from dask.distributed import as_completed

        workers = self._workers()
        resources = {CORES: 1} if self._cores_declared(workers) else None
        if resources is None and any(int(w.get("nthreads", 1)) > 1 for w in workers):
            print(f"explore: Dask workers with several threads and no '{CORES}' resource may run two points on "
                  f"one core; start them with --resources {CORES}=N (N = the cores each may use)",
                  file=sys.stderr, flush=True)
        # pure=False: a point is evaluated once per submission, never deduplicated with another sweep's
        futures = [self._client.submit(call, fn, a, pure=False, resources=resources) for fn, a in calls]
        index = {f.key: n for n, f in enumerate(futures)}
        for f in as_completed(futures):
            yield index[f.key], f.result()


def call(function: str, arg: dict[str, Any]) -> dict[str, Any]:
    """Import ``module:function`` in the worker and run it on ``arg``."""
    import importlib

    module, name = function.split(":")
    return getattr(importlib.import_module(module), name)(arg)


class Progress:
    """One line per finished point: done / running / left and an ETA from the mean time per point so far."""

    def __init__(self, total: int, parallel: int, say: Callable[[str], None]) -> None:
        self.total, self.parallel, self.say = total, max(1, parallel), say
        self.done = 0
        self.start = time.perf_counter()

    def finished(self, what: str) -> None:
        self.done += 1
        left = self.total - self.done
        running = min(self.parallel, left)
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.done * left
        self.say(f"[{self.done}/{self.total}] {what}  (done {self.done}, running {running}, left {left - running}; "
                 f"ETA {_clock(eta)})")


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def run_batch(tasks: list[Task], engine: Engine, cache: Cache,
              say: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
              describe: Callable[[dict[str, Any]], str] = lambda r: r["row"].get("status", "")
              ) -> dict[str, dict[str, Any]]:
    """Every task's result by point id: cached ones read, the rest computed on ``engine`` and cached."""
    results: dict[str, dict[str, Any]] = {}
    todo: list[Task] = []
    seen: set[str] = set()
    for t in tasks:
        if t.point_id in seen:
            continue
        seen.add(t.point_id)
        hit = cache.get(t.key)
        if hit is not None:
            results[t.point_id] = hit
        else:
            todo.append(t)
    if not todo:
        return results
    progress = Progress(len(todo), engine.parallel(), say)
    for n, result in engine.submit_all([(t.function, t.arg) for t in todo]):
        t = todo[n]
        blob = result.pop("model_npz", None)
        cache.put(t.key, result, blob)
        engine.evaluations += 1
        results[t.point_id] = result
        progress.finished(f"{t.point_id}: {describe(result)}")
    return results
