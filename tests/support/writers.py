"""Writer processes for the concurrency and crash tests (spawned: importable top-level code)."""

from __future__ import annotations

import sys

from ledger import Settings, open_store
from ledger.recorders import ChainedApplicationRecorder
from tests.conftest import make_events


def append_in_batches(url: str, total: int, batch: int) -> int:
    """Append ``total`` fresh events in batches of ``batch``; return how many were appended."""
    with open_store(Settings(database_url=url, pool_size=2)) as store:
        recorder = ChainedApplicationRecorder(store)
        events = make_events(total)
        for start in range(0, total, batch):
            recorder.insert_events(events[start : start + batch])
    return total


def append_one_huge_batch(url: str, total: int) -> None:
    """Append ``total`` events in one batch (the crash test kills us in the middle)."""
    with open_store(Settings(database_url=url, pool_size=1)) as store:
        recorder = ChainedApplicationRecorder(store)
        events = make_events(total, size=400)
        print("appending", flush=True)
        recorder.insert_events(events)
        print("committed", flush=True)


if __name__ == "__main__":
    append_one_huge_batch(sys.argv[1], int(sys.argv[2]))
