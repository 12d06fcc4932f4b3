"""A writer that cannot get the append lock in time gets a clear error; nothing is stored."""

from __future__ import annotations

import sqlite3
import time

import psycopg
import pytest

from ledger import Settings, open_store
from ledger.errors import AppendTimeoutError
from ledger.recorders import ChainedApplicationRecorder
from ledger.sqlfiles import queries
from ledger.store import ChainStore
from tests.conftest import make_events


def test_append_gives_up_after_the_lock_timeout(url: str, store: ChainStore, backend: str) -> None:
    ChainedApplicationRecorder(store).insert_events(make_events(2))
    # Another writer holds the append lock (and does not let go).
    if backend == "postgres":
        holder: psycopg.Connection[tuple[object, ...]] | sqlite3.Connection = psycopg.connect(url)
        holder.execute(queries("postgres")["append_lock"])
    else:
        holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    try:
        with open_store(Settings(database_url=url, lock_timeout_s=0.3)) as impatient:
            started = time.monotonic()
            with pytest.raises(AppendTimeoutError) as caught:
                ChainedApplicationRecorder(impatient).insert_events(make_events(3))
            waited = time.monotonic() - started
        assert 0.25 < waited < 10
        assert "for more than 0.3 s; nothing was stored. Retry, or raise " in str(caught.value)
    finally:
        holder.rollback()
        holder.close()
    assert store.max_position() == 1
    assert ChainedApplicationRecorder(store).insert_events(make_events(1)) == [3]
