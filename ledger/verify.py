"""Verify the stored chain: every hash recomputed, every link and position checked.

Large PostgreSQL logs are split into consecutive segments checked by worker
processes. Segment ``[a, b]`` starts from the stored hash at ``a - 1``, which the
previous segment checks against its own content, so together the segments check
exactly what one walk would; the first fault of the earliest faulty segment is
reported. Memory is constant in the log's length.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from .chain import ChainFault, ChainHead, VerifiedSpan, first_fault
from .errors import ConfigurationError
from .factory import open_store
from .settings import Settings, redact_url

__all__ = ["VerifyReport", "verify_ledger"]

# Below this many events a second process costs more than it saves.
PARALLEL_THRESHOLD = 200_000


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of one verification pass."""

    database: str
    first: int
    last: int | None
    checked: int
    head: ChainHead
    fault: ChainFault | None
    elapsed_s: float
    jobs: int

    @property
    def ok(self) -> bool:
        return self.fault is None

    @property
    def events_per_s(self) -> float:
        return self.checked / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "database": self.database,
            "from": self.first,
            "to": self.last,
            "checked": self.checked,
            "head": {
                "next_position": self.head.next_position,
                "hash": self.head.last_hash.hex(),
            },
            "fault": None
            if self.fault is None
            else {
                "position": self.fault.position,
                "kind": self.fault.kind.value,
                "detail": self.fault.detail,
            },
            "elapsed_s": round(self.elapsed_s, 6),
            "events_per_s": round(self.events_per_s),
            "jobs": self.jobs,
        }


def verify_ledger(
    settings: Settings,
    *,
    first: int = 0,
    last: int | None = None,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Verify positions ``first`` to ``last`` (default: the whole log).

    ``progress(done, total)`` is called as events are checked. ``jobs`` caps the
    worker processes (default: one per CPU, PostgreSQL only, large ranges only).
    """
    started = time.perf_counter()
    if first < 0:
        raise ConfigurationError(f"--from {first} is negative; positions start at 0")
    with open_store(settings) as store:
        tail = store.max_position()
        database = redact_url(settings.database_url)
        if tail is None or (last is not None and last < first):
            return VerifyReport(
                database, first, last, 0, ChainHead(), None, time.perf_counter() - started, 0
            )
        if first > tail:
            raise ConfigurationError(
                f"--from {first} is past the last position {tail}; give --from {tail} or less"
            )
        end = tail if last is None else min(last, tail)
        total = end - first + 1
        workers = _worker_count(store.backend, total, jobs)
        bounds = _segments(first, end, workers)
        starts = [store.head_after(a - 1) for a, _ in bounds]
        if workers == 1:
            outcome = [_walk(store, first, end, starts[0], progress, total)]
        else:
            outcome = _walk_in_processes(settings, bounds, starts, progress, total)
    fault: ChainFault | None = None
    checked = 0
    head = starts[0]
    for segment_fault, span in outcome:
        checked += span.count
        head = span.head
        if segment_fault is not None:
            fault = segment_fault
            break
    return VerifyReport(
        database, first, end, checked, head, fault, time.perf_counter() - started, workers
    )


def _walk(
    store: Any,
    a: int,
    b: int,
    start: ChainHead,
    progress: Callable[[int, int], None] | None,
    total: int,
) -> tuple[ChainFault | None, VerifiedSpan]:
    report = None if progress is None else (lambda done: progress(done, total))
    with store.links(a, b) as links:
        fault, span = first_fault(links, start, end=b + 1, diagnose=store.diagnose, progress=report)
    if progress is not None:
        progress(span.count, total)
    return fault, span


def _worker_count(backend: str, total: int, jobs: int | None) -> int:
    if jobs is not None and jobs < 1:
        raise ConfigurationError(f"--jobs {jobs} must be at least 1")
    if backend != "postgres" or total < PARALLEL_THRESHOLD:
        return 1
    return max(1, min(jobs or os.cpu_count() or 1, total // (PARALLEL_THRESHOLD // 2)))


def _segments(first: int, last: int, count: int) -> list[tuple[int, int]]:
    """``count`` consecutive inclusive ranges covering ``first..last``.

    >>> _segments(0, 9, 3)
    [(0, 3), (4, 6), (7, 9)]
    """
    total = last - first + 1
    bounds: list[tuple[int, int]] = []
    a = first
    for i in range(count):
        size = total // count + (1 if i < total % count else 0)
        bounds.append((a, a + size - 1))
        a += size
    return bounds


_counter: Any = None


def _init_worker(counter: Any) -> None:
    global _counter
    _counter = counter


def _verify_segment(
    url: str, a: int, b: int, start: ChainHead
) -> tuple[ChainFault | None, VerifiedSpan]:
    reported = 0

    def report(done: int) -> None:
        nonlocal reported
        with _counter.get_lock():
            _counter.value += done - reported
        reported = done

    settings = Settings(database_url=url, pool_size=1)
    with open_store(settings) as store, store.links(a, b) as links:
        fault, span = first_fault(links, start, end=b + 1, diagnose=store.diagnose, progress=report)
    report(span.count)
    return fault, span


def _walk_in_processes(
    settings: Settings,
    bounds: list[tuple[int, int]],
    starts: list[ChainHead],
    progress: Callable[[int, int], None] | None,
    total: int,
) -> list[tuple[ChainFault | None, VerifiedSpan]]:
    context = multiprocessing.get_context("spawn")
    counter = context.Value("q", 0)
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.2):
            if progress is not None:
                progress(counter.value, total)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        with ProcessPoolExecutor(
            len(bounds), mp_context=context, initializer=_init_worker, initargs=(counter,)
        ) as pool:
            futures = [
                pool.submit(_verify_segment, settings.database_url, a, b, start)
                for (a, b), start in zip(bounds, starts, strict=True)
            ]
            results = [f.result() for f in futures]
    finally:
        done.set()
        poller.join()
    if progress is not None:
        progress(counter.value, total)
    return results
