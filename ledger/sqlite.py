"""The embedded default: the chain store in one SQLite file.

``BEGIN IMMEDIATE`` is the append lock: it serializes writers across threads and
processes, so positions stay gapless and the chain linear. WAL mode lets readers
run beside the writer; ``synchronous=FULL`` makes each commit durable.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking

from . import merkle, tree
from .chain import ChainHead, LedgerRecord, Link, links_of, seal
from .errors import AppendTimeoutError, DuplicateSourceError, StoreUnavailableError
from .settings import Settings
from .sqlfiles import queries
from .store import AppliedMigration, ChainStore, Migration
from .validation import BatchValidator
from .views import ViewSession

__all__ = ["SQLiteChainStore"]

Q = queries("sqlite")


class SQLiteChainStore(ChainStore):
    """The ledger in a SQLite file; one connection per thread."""

    backend = "sqlite"

    def __init__(self, settings: Settings) -> None:
        self.url = settings.database_url
        self.path = settings.sqlite_path
        self._timeout = settings.lock_timeout_s
        parent = Path(self.path).resolve().parent
        if not parent.is_dir():
            raise StoreUnavailableError(
                f"cannot open {self.url}: folder {parent} does not exist; create it or "
                "point REGLEDGER_DATABASE_URL elsewhere"
            )
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._conn()  # fail now, with a clear message, if the file cannot be opened

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as exc:
                raise StoreUnavailableError(f"cannot open {self.url}: {exc}") from exc
            self._local.conn = conn
            with self._guard:
                self._all.append(conn)
        return conn

    # --- appending -------------------------------------------------------------------

    def append(
        self,
        events: Sequence[StoredEvent],
        validator: BatchValidator,
        tracking: Tracking | None = None,
        sources: Sequence[tuple[str, int]] = (),
    ) -> list[int]:
        prepared = validator.prepare(events)  # before the lock: SQLite writers do not overlap
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            raise AppendTimeoutError(
                f"another writer held {self.url} for more than {self._timeout:g} s; nothing "
                "was stored. Retry, or raise REGLEDGER_LOCK_TIMEOUT"
            ) from exc
        try:
            row = conn.execute(Q["head"]).fetchone()
            head = ChainHead() if row is None else ChainHead(row[0] + 1, row[1], row[2])
            batch = seal(head, prepared, time.time_ns() // 1000)
            conn.executemany(Q["insert_event"], batch.records)
            self._store_tree_nodes(conn, head.next_position, [r.hash for r in batch.records])
            if tracking is not None:
                self._insert_tracking(conn, tracking)
            if sources:
                conn.executemany(
                    Q["insert_source"],
                    [(source, head.next_position + index) for source, index in sources],
                )
            conn.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            conn.execute("ROLLBACK")
            if "ledger_sources" in str(exc):
                raise DuplicateSourceError([s for s, _ in sources], str(exc)) from exc
            raise IntegrityError(f"{exc}; nothing of the batch was stored") from exc
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return [r.position for r in batch.records]

    # --- reading ---------------------------------------------------------------------

    def source_positions(self, source_event_ids: Sequence[str]) -> dict[str, int]:
        if not source_event_ids:
            return {}
        rows = self._conn().execute(Q["source_positions"], (json.dumps(list(source_event_ids)),))
        return {source: position for source, position in rows}

    def select_events(
        self,
        originator_id: str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        query = Q["select_events_desc" if desc else "select_events_asc"]
        params = {"originator_id": originator_id, "gt": gt, "lte": lte, "limit": limit}
        return [StoredEvent(*row) for row in self._conn().execute(query, params)]

    def select_records(
        self, first: int, last: int | None, topics: Sequence[str], limit: int
    ) -> list[LedgerRecord]:
        params: dict[str, object] = {"first": first, "last": last, "limit": limit}
        query = Q["select_records"]
        if topics:
            params["topics"] = json.dumps(list(topics))
            query = Q["select_records_by_topic"]
        return [LedgerRecord(*row) for row in self._conn().execute(query, params)]

    def records_of(self, originator_id: str) -> list[LedgerRecord]:
        rows = self._conn().execute(Q["records_of"], {"originator_id": originator_id})
        return [LedgerRecord(*row) for row in rows]

    def stored_hashes(self, level: int, start: int, end: int) -> list[bytes]:
        return self._stored_hashes(self._conn(), level, start, end)

    @staticmethod
    def _stored_hashes(conn: sqlite3.Connection, level: int, start: int, end: int) -> list[bytes]:
        if level == 0:
            rows = conn.execute(Q["event_hashes"], {"start": start, "end": end})
        else:
            rows = conn.execute(Q["tree_nodes"], {"level": level, "start": start, "end": end})
        return [row[0] for row in rows]

    def _store_tree_nodes(
        self, conn: sqlite3.Connection, first: int, hashes: Sequence[bytes]
    ) -> None:
        """Inside the append transaction: the tree nodes this batch completes."""
        block_start = first - first % tree.TILE_WIDTH
        levels = tree.OverlayLevels(
            lambda level, start, end: self._stored_hashes(conn, level, start, end),
            first,
            hashes,
            [merkle.leaf_hash(h) for h in self._stored_hashes(conn, 0, block_start, first)],
        )
        nodes = tree.completed_nodes(levels, first, first + len(hashes))
        conn.executemany(Q["insert_tree_node"], nodes)

    def record_checkpoint(self, size: int, root: bytes, note: str) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(Q["insert_checkpoint"], {"size": size, "root": root, "note": note})
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def latest_checkpoint(self) -> str | None:
        row = self._conn().execute(Q["latest_checkpoint"]).fetchone()
        return None if row is None else str(row[0])

    def backfill_tree(self) -> int:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            last = conn.execute(Q["max_position"]).fetchone()[0]
            size = 0 if last is None else last + 1
            done = conn.execute(Q["tree_node_count"]).fetchone()[0] * tree.TILE_WIDTH
            levels = tree.OverlayLevels(
                lambda level, start, end: self._stored_hashes(conn, level, start, end), size, ()
            )
            nodes = tree.completed_nodes(levels, done, size)
            conn.executemany(Q["insert_tree_node"], nodes)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(nodes)

    def max_position(self) -> int | None:
        value: int | None = self._conn().execute(Q["max_position"]).fetchone()[0]
        return value

    def record_at(self, position: int) -> LedgerRecord | None:
        row = self._conn().execute(Q["record_at"], {"position": position}).fetchone()
        return None if row is None else LedgerRecord(*row)

    def position_of_hash(self, digest: bytes) -> int | None:
        row = self._conn().execute(Q["position_of_hash"], {"hash": digest}).fetchone()
        return None if row is None else int(row[0])

    def position_of_prev_hash(self, digest: bytes) -> int | None:
        row = self._conn().execute(Q["position_of_prev_hash"], {"hash": digest}).fetchone()
        return None if row is None else int(row[0])

    @contextmanager
    def links(self, first: int, last: int) -> Iterator[Iterator[Link]]:
        # A connection of its own: the walk reads one snapshot while others append.
        conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
        try:
            conn.execute("BEGIN")
            cursor = conn.execute(Q["records_range"], {"first": first, "last": last})
            cursor.arraysize = 4096
            yield iter(links_of(LedgerRecord(*row) for row in cursor))
        finally:
            conn.close()

    # --- tracking --------------------------------------------------------------------

    def insert_tracking(self, tracking: Tracking) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._insert_tracking(conn, tracking)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _insert_tracking(conn: sqlite3.Connection, tracking: Tracking) -> None:
        params = {
            "application_name": tracking.application_name,
            "notification_id": tracking.notification_id,
        }
        if conn.execute(Q["insert_tracking"], params).fetchone() is None:
            raise IntegrityError(
                f"tracking {tracking.application_name!r} is already at or past "
                f"notification {tracking.notification_id}; nothing was stored"
            )

    def max_tracking_id(self, application_name: str) -> int | None:
        row = (
            self._conn()
            .execute(Q["max_tracking_id"], {"application_name": application_name})
            .fetchone()
        )
        return None if row is None else int(row[0])

    # --- read models -------------------------------------------------------------------

    def view_session(self) -> ViewSession:
        from .sqlite_views import SQLiteViewSession

        return SQLiteViewSession(self.path, self._timeout)

    # --- notification of appends -----------------------------------------------------

    def watch(self, stopped: Callable[[], bool], appended: Callable[[], None]) -> None:
        # data_version changes when another connection commits: a cheap poll.
        conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
        try:
            seen = conn.execute("PRAGMA data_version").fetchone()[0]
            appended()  # whatever was committed before the first poll
            while not stopped():
                time.sleep(0.02)
                version = conn.execute("PRAGMA data_version").fetchone()[0]
                if version != seen:
                    seen = version
                    appended()
        finally:
            conn.close()

    # --- schema ----------------------------------------------------------------------

    def applied_migrations(self) -> list[AppliedMigration]:
        conn = self._conn()
        if conn.execute(Q["migrations_table_exists"]).fetchone() is None:
            return []  # a new database; `migrate` creates the table
        return [AppliedMigration(*row) for row in conn.execute(Q["applied_migrations"])]

    def apply_migration(self, migration: Migration) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(Q["migrations_table"])
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                Q["record_migration"],
                {"version": migration.version, "name": migration.name, "sha256": migration.sha256},
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self._guard:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


def _statements(script: str) -> Iterator[str]:
    """Split a script into complete statements (trigger bodies hold inner semicolons)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statement = pending.strip()
            pending = ""
            if statement and not all(
                part.strip().startswith("--") or not part.strip() for part in statement.splitlines()
            ):
                yield statement
    if pending.strip() and not all(
        p.strip().startswith("--") or not p.strip() for p in pending.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at the end of the migration: {pending!r}")
