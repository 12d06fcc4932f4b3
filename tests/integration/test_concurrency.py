"""Concurrent writers, and a writer killed in the middle of a batch."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from ledger import Settings
from ledger.recorders import ChainedApplicationRecorder
from ledger.store import ChainStore
from ledger.verify import verify_ledger
from tests.conftest import make_events
from tests.support.writers import append_in_batches

WRITERS = 8
PER_WRITER = 1_000


def _assert_one_linear_chain(url: str, store: ChainStore, total: int) -> None:
    assert store.max_position() == total - 1
    report = verify_ledger(Settings(database_url=url))
    assert (report.ok, report.checked, report.head.next_position) == (True, total, total)


def test_eight_threads_share_one_gapless_chain(url: str, store: ChainStore) -> None:
    recorder = ChainedApplicationRecorder(store)

    def write(writer: int) -> int:
        events = make_events(PER_WRITER)
        batch = 1 + writer * 7  # 1, 8, 15, ... events per append: mixed sizes interleave
        for start in range(0, PER_WRITER, batch):
            recorder.insert_events(events[start : start + batch])
        return writer

    with ThreadPoolExecutor(WRITERS) as pool:
        assert sorted(pool.map(write, range(WRITERS))) == list(range(WRITERS))
    _assert_one_linear_chain(url, store, WRITERS * PER_WRITER)


def test_eight_processes_share_one_gapless_chain(url: str, store: ChainStore) -> None:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(WRITERS, mp_context=context) as pool:
        counts = list(
            pool.map(
                append_in_batches,
                [url] * WRITERS,
                [PER_WRITER] * WRITERS,
                [10 + 13 * w for w in range(WRITERS)],
            )
        )
    assert counts == [PER_WRITER] * WRITERS
    _assert_one_linear_chain(url, store, WRITERS * PER_WRITER)


def _in_flight(url: str, writer: subprocess.Popen[str], backend: str) -> bool:
    """Has the writer started sending its batch to the database?"""
    if backend == "postgres":
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'COPY ledger_events%%' "
                "AND state = 'active'"
            ).fetchone()
        return bool(row and row[0])
    wal = Path(url.removeprefix("sqlite:///") + "-wal")
    return wal.exists() and wal.stat().st_size > 4 * 1024 * 1024


def test_writer_killed_mid_batch_leaves_no_trace(url: str, store: ChainStore, backend: str) -> None:
    recorder = ChainedApplicationRecorder(store)
    recorder.insert_events(make_events(100))

    # A separate process starts one 150,000-event append; kill it with SIGKILL while the
    # batch is on its way into the database (COPY running, or the WAL filling up).
    with subprocess.Popen(
        [sys.executable, "-m", "tests.support.writers", url, "150000"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    ) as writer:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "appending"
        deadline = time.monotonic() + 60
        while not _in_flight(url, writer, backend):
            assert writer.poll() is None, "the writer finished before it could be killed"
            assert time.monotonic() < deadline, "the batch never reached the database"
            time.sleep(0.005)
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(timeout=30) == -signal.SIGKILL

    # Nothing of the killed batch is visible; the chain is intact and continues.
    assert store.max_position() == 99
    assert verify_ledger(Settings(database_url=url)).ok
    assert recorder.insert_events(make_events(5)) == [101, 102, 103, 104, 105]
    report = verify_ledger(Settings(database_url=url))
    assert (report.ok, report.checked) == (True, 105)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_parallel_verify_matches_a_single_walk(url: str, store: ChainStore) -> None:
    # Enough events for two worker processes; both passes must agree to the byte.
    recorder = ChainedApplicationRecorder(store)
    events = make_events(210_000, size=16)
    for start in range(0, len(events), 5_000):
        recorder.insert_events(events[start : start + 5_000])
    single = verify_ledger(Settings(database_url=url), jobs=1)
    parallel = verify_ledger(Settings(database_url=url), jobs=2)
    assert (single.jobs, parallel.jobs) == (1, 2)
    assert (
        (single.checked, single.head)
        == (parallel.checked, parallel.head)
        == (
            210_000,
            single.head,
        )
    )
    assert single.ok and parallel.ok
