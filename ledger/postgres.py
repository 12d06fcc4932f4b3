"""The chain store on PostgreSQL (psycopg 3, a connection pool), TimescaleDB when present.

Appends take a transaction-scoped advisory lock, read the head and the database
clock, seal the batch and send it with one binary COPY. The COPY rows are built
from the hashed messages themselves: the canonical encoding frames fields exactly
as binary COPY does (docs/FORMAT.md), so only the timestamp frame is rewritten.
"""

from __future__ import annotations

import hashlib
import inspect
import struct
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg_pool
from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus

from . import tree
from .chain import ChainHead, LedgerRecord, Link, seal
from .errors import (
    AppendTimeoutError,
    ConfigurationError,
    DuplicateSourceError,
    LedgerError,
    StorePermissionError,
    StoreUnavailableError,
)
from .settings import Settings, redact_url
from .sqlfiles import queries
from .store import AppliedMigration, ChainStore, Migration
from .validation import BatchValidator, PreparedEvent
from .views import ViewSession

__all__ = ["PostgresChainStore", "copy_payload", "copy_rows", "parse_links"]

Q = queries("postgres")

_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"
_POSITION_VERSION = struct.Struct(">hIqIq")  # field count 8, F(position), F(version)
_PREV_FRAME = _HASH_FRAME = struct.pack(">I", 32)
_TIMESTAMP = struct.Struct(">Iq")
# Text goes into the hash as UTF-8: every connection says so, whatever the server default.
_CONNECT: dict[str, Any] = {"client_encoding": "UTF8", "connect_timeout": 10}
# Events sealed and sent per COPY write: the server inserts one chunk while we seal the next.
_CHUNK = 128
# PostgreSQL counts timestamps in microseconds from 2000-01-01; the ledger from 1970-01-01.
_PG_EPOCH_OFFSET_US = 946_684_800_000_000


def copy_rows(records: Sequence[LedgerRecord], bodies: Sequence[bytes]) -> bytes:
    """Binary COPY rows of sealed events, in the column order of the ``copy_in`` query.

    A row is ``count F(position) F(version) F(recorded_at) F(id) F(topic) F(state)
    F(prev_hash) F(hash)``: the hashed message's frames with PostgreSQL's timestamp
    in the third, and ``F(hash)`` appended. ``bodies`` are the events' body frames.
    """
    if not records:
        return b""
    stamp = _TIMESTAMP.pack(8, records[0].recorded_at_us - _PG_EPOCH_OFFSET_US)
    parts: list[bytes] = []
    for r, body in zip(records, bodies, strict=True):
        parts += (_POSITION_VERSION.pack(8, 8, r.position, 8, r.originator_version), stamp, body,
                  _PREV_FRAME, r.prev_hash, _HASH_FRAME, r.hash)  # fmt: skip
    return b"".join(parts)


def copy_payload(records: Sequence[LedgerRecord], bodies: Sequence[bytes]) -> bytes:
    """A complete binary COPY stream (signature, rows, trailer) of one sealed batch."""
    return _COPY_SIGNATURE + copy_rows(records, bodies) + _COPY_TRAILER


_ROW_HEAD = struct.Struct(">hiqiqiqi")  # field count, F(position), F(version), F(time), len(id)
_LEN = struct.Struct(">i")


def parse_links(rows: Iterator[Any]) -> Generator[Link, None, None]:
    """Links from the binary COPY rows of the ``links_copy`` query.

    Each row is ``count F(position) F(version) F(recorded_at) F(id) F(topic) F(state)
    F(prev_hash) F(hash)``; its bytes from ``F(position)`` through ``F(prev_hash)``
    are the hashed message, so the hash is taken over a slice, without re-encoding.
    """
    sha256 = hashlib.sha256
    head = _ROW_HEAD.unpack_from
    length = _LEN.unpack_from
    offset = len(_COPY_SIGNATURE)
    for buf in rows:
        if len(buf) - offset == 2:  # the trailer; the iteration then ends by itself
            continue
        _, _, position, _, _, _, recorded_at_us, id_len = head(buf, offset)
        end = offset + 42 + id_len
        end += 4 + length(buf, end)[0]
        end += 4 + length(buf, end)[0]
        yield (
            position,
            recorded_at_us,
            buf[end + 4 : end + 36],
            buf[end + 40 : end + 72],
            sha256(buf[offset + 2 : end + 36]).digest(),
        )
        offset = 0


class PostgresChainStore(ChainStore):
    """The ledger in PostgreSQL; one pool of autocommit connections."""

    backend = "postgres"

    def __init__(
        self, settings: Settings, *, min_size: int = 1, maintain_tree: bool = True
    ) -> None:
        # maintain_tree=False exists to measure what tree upkeep costs (bench/proofs.py);
        # a store without it cannot prove anything it records meanwhile.
        self.maintain_tree = maintain_tree
        self.url = settings.database_url
        self._lock_timeout_ms = round(settings.lock_timeout_s * 1000)
        try:
            with psycopg.connect(self.url, **_CONNECT) as probe:
                timescale, encoding = probe.execute(Q["probe"]).fetchone() or (False, "")
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(
                f"cannot connect to {redact_url(self.url)}: {_first_line(exc)}; is PostgreSQL "
                "running, and is REGLEDGER_DATABASE_URL right?"
            ) from exc
        if encoding != "UTF8":
            raise ConfigurationError(
                f"{redact_url(self.url)} has encoding {encoding}; the ledger hashes UTF-8 text "
                "and needs a UTF8 database (CREATE DATABASE ... ENCODING 'UTF8')"
            )
        self.timescale = bool(timescale)
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = (
            psycopg_pool.ConnectionPool(
                self.url,
                min_size=min(min_size, settings.pool_size),
                max_size=settings.pool_size,
                kwargs={"autocommit": True, **_CONNECT},
                timeout=settings.lock_timeout_s,
                open=True,
                name="regledger",
            )
        )

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except pg_errors.InsufficientPrivilege as exc:
            if "append-only" in str(exc):  # the trigger's refusal, not a missing grant
                raise
            raise StorePermissionError(
                f"{redact_url(self.url)}: {_first_line(exc)}; connect as a role that holds "
                "the privilege (migrations run as the database owner)"
            ) from exc
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            if isinstance(exc, pg_errors.LockNotAvailable | pg_errors.QueryCanceled):
                raise
            raise StoreUnavailableError(
                f"lost the connection to {redact_url(self.url)}: {_first_line(exc)}"
            ) from exc

    # --- appending -------------------------------------------------------------------

    def append(
        self,
        events: Sequence[StoredEvent],
        validator: BatchValidator,
        tracking: Tracking | None = None,
        sources: Sequence[tuple[str, int]] = (),
    ) -> list[int]:
        with self._connection() as conn:
            try:
                return self._append(conn, events, validator, tracking, sources)
            except BaseException:
                if conn.info.transaction_status != TransactionStatus.IDLE and not conn.closed:
                    conn.execute("ROLLBACK")
                raise

    def _append(
        self,
        conn: psycopg.Connection[Any],
        events: Sequence[StoredEvent],
        validator: BatchValidator,
        tracking: Tracking | None,
        sources: Sequence[tuple[str, int]],
    ) -> list[int]:
        cur, head_cur, block_cur = conn.cursor(), conn.cursor(), conn.cursor(binary=True)
        try:
            # One round trip: begin, bound the wait, take the lock, read head and clock,
            # and the hashes of the unfinished tree block at the head.
            with conn.pipeline():
                cur.execute("BEGIN")
                cur.execute(Q["lock_timeout"], {"timeout": f"{self._lock_timeout_ms}ms"})
                cur.execute(Q["append_lock"], prepare=True)
                head_cur.execute(Q["head_and_clock"], prepare=True)
                if self.maintain_tree:
                    block_cur.execute(Q["open_block"], prepare=True)
            now_us, last, last_hash, last_time = head_cur.fetchone() or (0, None, b"", 0)
            open_leaves = (
                [bytes(row[0]) for row in block_cur.fetchall()] if self.maintain_tree else []
            )
        except pg_errors.LockNotAvailable as exc:
            raise AppendTimeoutError(
                f"another writer held the append lock of {redact_url(self.url)} for more "
                f"than {self._lock_timeout_ms / 1000:g} s; nothing was stored. Retry, or "
                "raise REGLEDGER_LOCK_TIMEOUT"
            ) from exc
        head = ChainHead() if last is None else ChainHead(last + 1, last_hash, last_time)
        first = head.next_position
        try:
            checked: list[PreparedEvent] | None = None
            if self.timescale and events:
                # No query can run inside a COPY: validate and check versions first.
                checked = validator.prepare(events)
                self._check_versions(cur, checked)
            if tracking is not None:
                self._insert_tracking(cur, tracking)
            if sources:
                cur.execute(
                    Q["insert_sources"],
                    {
                        "ids": [source for source, _ in sources],
                        "positions": [first + index for _, index in sources],
                    },
                )
            levels = self._tree_levels(cur, first, open_leaves) if self.maintain_tree else None
            nodes: list[tuple[int, int, bytes]] = []
            if events:
                # Validate and seal chunk by chunk into the COPY: our CPU work overlaps
                # the server's inserts of the previous chunk. A bad event aborts the COPY.
                with cur.copy(Q["copy_in"]) as copy:
                    copy.write(_COPY_SIGNATURE)
                    for start in range(0, len(events), _CHUNK):
                        chunk = (
                            checked[start : start + _CHUNK]
                            if checked is not None
                            else validator.prepare(events[start : start + _CHUNK], start)
                        )
                        chunk_first = head.next_position
                        batch = seal(head, chunk, now_us)
                        head = batch.head
                        copy.write(copy_rows(batch.records, [e.body for e in chunk]))
                        if levels is not None:
                            # Level-8 tiles need only this batch and the open block: make
                            # them while the server inserts the chunk just sent.
                            levels.extend(chunk_first, [r.hash for r in batch.records])
                            nodes += tree.completed_nodes(
                                levels, chunk_first, head.next_position, max_level=8
                            )
                    copy.write(_COPY_TRAILER)
            if levels is not None:
                # Higher levels (every 65,536 events) read stored nodes: after the COPY.
                nodes += tree.completed_nodes(
                    levels, first, head.next_position, min_level=2 * tree.TILE_HEIGHT
                )
            with conn.pipeline():
                if nodes:
                    cur.execute(Q["insert_tree_nodes"], _node_columns(nodes))
                if events:
                    cur.execute(Q["notify"])
                cur.execute("COMMIT")
        except pg_errors.UniqueViolation as exc:
            if exc.diag.table_name == "ledger_sources":
                raise DuplicateSourceError([s for s, _ in sources], _first_line(exc)) from exc
            raise IntegrityError(
                f"{_first_line(exc)}: an event with that originator_id and version is "
                "already recorded; nothing of the batch was stored"
            ) from exc
        return list(range(first, head.next_position))

    def source_positions(self, source_event_ids: Sequence[str]) -> dict[str, int]:
        if not source_event_ids:
            return {}
        with self._connection() as conn:
            rows = conn.execute(Q["source_positions"], {"ids": list(source_event_ids)})
            return {source: position for source, position in rows}

    @staticmethod
    def _tree_levels(
        cur: psycopg.Cursor[Any], first: int, open_leaves: list[bytes]
    ) -> tree.OverlayLevels:
        """The tree as this append will leave it (docs/FORMAT.md section 5)."""
        if first - first % tree.TILE_WIDTH + len(open_leaves) != first:
            raise LedgerError(
                f"the open tree block before position {first} holds {len(open_leaves)} events; "
                "the log is not gapless: run `regledger verify`"
            )
        return tree.OverlayLevels(
            lambda level, start, end: _stored_hashes(cur, level, start, end),
            first,
            (),
            open_leaves,
        )

    @staticmethod
    def _check_versions(cur: psycopg.Cursor[Any], events: Sequence[PreparedEvent]) -> None:
        clash = cur.execute(
            Q["existing_versions"],
            {
                "ids": [e.originator_id for e in events],
                "versions": [e.originator_version for e in events],
            },
        ).fetchone()
        if clash is not None:
            raise IntegrityError(
                f"originator_id={clash[0]!r} originator_version={clash[1]} is already "
                "recorded; nothing of the batch was stored"
            )

    # --- reading ---------------------------------------------------------------------

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
        with self._connection() as conn, conn.cursor(binary=True) as cur:
            cur.execute(query, params, prepare=True)
            return [StoredEvent(*row) for row in cur]

    def select_records(
        self, first: int, last: int | None, topics: Sequence[str], limit: int
    ) -> list[LedgerRecord]:
        params = {"first": first, "last": last, "topics": list(topics) or None, "limit": limit}
        with self._connection() as conn, conn.cursor(binary=True) as cur:
            cur.execute(Q["select_records"], params, prepare=True)
            return [LedgerRecord(*row) for row in cur]

    def records_of(self, originator_id: str) -> list[LedgerRecord]:
        with self._connection() as conn, conn.cursor(binary=True) as cur:
            cur.execute(Q["records_of"], {"originator_id": originator_id}, prepare=True)
            return [LedgerRecord(*row) for row in cur]

    def stored_hashes(self, level: int, start: int, end: int) -> list[bytes]:
        with self._connection() as conn, conn.cursor(binary=True) as cur:
            return _stored_hashes(cur, level, start, end)

    def record_checkpoint(self, size: int, root: bytes, note: str) -> None:
        with self._connection() as conn:
            conn.execute(Q["insert_checkpoint"], {"size": size, "root": root, "note": note})

    def latest_checkpoint(self) -> str | None:
        with self._connection() as conn:
            row = conn.execute(Q["latest_checkpoint"]).fetchone()
        return None if row is None else str(row[0])

    def backfill_tree(self) -> int:
        with self._connection() as conn, conn.transaction(), conn.cursor(binary=True) as cur:
            cur.execute(Q["append_lock"])
            last = cur.execute(Q["max_position"]).fetchone()
            size = 0 if last is None or last[0] is None else last[0] + 1
            count = cur.execute(Q["tree_node_count"]).fetchone()
            done = (count[0] if count else 0) * tree.TILE_WIDTH
            levels = tree.OverlayLevels(
                lambda level, start, end: _stored_hashes(cur, level, start, end), size, ()
            )
            nodes = tree.completed_nodes(levels, done, size)
            if nodes:
                cur.execute(Q["insert_tree_nodes"], _node_columns(nodes))
        return len(nodes)

    def max_position(self) -> int | None:
        with self._connection() as conn:
            row = conn.execute(Q["max_position"]).fetchone()
        return None if row is None else row[0]

    def record_at(self, position: int) -> LedgerRecord | None:
        with self._connection() as conn, conn.cursor(binary=True) as cur:
            row = cur.execute(Q["record_at"], {"position": position}).fetchone()
        return None if row is None else LedgerRecord(*row)

    def position_of_hash(self, digest: bytes) -> int | None:
        with self._connection() as conn:
            row = conn.execute(Q["position_of_hash"], {"hash": digest}).fetchone()
        return None if row is None else int(row[0])

    def position_of_prev_hash(self, digest: bytes) -> int | None:
        with self._connection() as conn:
            row = conn.execute(Q["position_of_prev_hash"], {"hash": digest}).fetchone()
        return None if row is None else int(row[0])

    @contextmanager
    def links(self, first: int, last: int) -> Iterator[Iterator[Link]]:
        # Its own connection in one transaction: a consistent snapshot while others append.
        try:
            conn = psycopg.connect(self.url, **_CONNECT)
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(
                f"cannot connect to {redact_url(self.url)}: {_first_line(exc)}"
            ) from exc
        try:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            with conn.cursor().copy(Q["links_copy"], {"first": first, "last": last}) as copy:
                walk = parse_links(iter(copy))
                try:
                    yield walk
                finally:
                    # Stopped at a fault: cancel the rest of the COPY rather than read it.
                    if inspect.getgeneratorstate(walk) != inspect.GEN_CLOSED:
                        conn.cancel_safe(timeout=10)
        except pg_errors.QueryCanceled:
            pass  # the cancel above; anything else propagates
        finally:
            conn.close()

    # --- tracking --------------------------------------------------------------------

    def insert_tracking(self, tracking: Tracking) -> None:
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            self._insert_tracking(cur, tracking)

    @staticmethod
    def _insert_tracking(cur: psycopg.Cursor[Any], tracking: Tracking) -> None:
        params = {
            "application_name": tracking.application_name,
            "notification_id": tracking.notification_id,
        }
        if cur.execute(Q["insert_tracking"], params, prepare=True).fetchone() is None:
            raise IntegrityError(
                f"tracking {tracking.application_name!r} is already at or past "
                f"notification {tracking.notification_id}; nothing was stored"
            )

    def max_tracking_id(self, application_name: str) -> int | None:
        with self._connection() as conn:
            row = conn.execute(
                Q["max_tracking_id"], {"application_name": application_name}, prepare=True
            ).fetchone()
        return None if row is None else int(row[0])

    # --- read models -------------------------------------------------------------------

    def view_session(self) -> ViewSession:
        from .postgres_views import PostgresViewSession

        try:
            conn = psycopg.connect(self.url, autocommit=True, **_CONNECT)
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(
                f"cannot connect to {redact_url(self.url)}: {_first_line(exc)}"
            ) from exc
        return PostgresViewSession(conn)

    # --- notification of appends -----------------------------------------------------

    def watch(self, stopped: Callable[[], bool], appended: Callable[[], None]) -> None:
        with psycopg.connect(self.url, autocommit=True, **_CONNECT) as conn:
            conn.execute(Q["listen"])
            # Appends committed before LISTEN took effect sent no notification we can see.
            appended()
            while not stopped():
                for _ in conn.notifies(timeout=0.1, stop_after=1):
                    appended()

    # --- schema ----------------------------------------------------------------------

    def applied_migrations(self) -> list[AppliedMigration]:
        with self._connection() as conn:
            # Reading needs no DDL: the writer role, which may not create tables, reads too.
            exists = conn.execute(Q["migrations_table_exists"]).fetchone()
            if not exists or not exists[0]:
                return []
            return [
                AppliedMigration(v, n, s, a.isoformat())
                for v, n, s, a in conn.execute(Q["applied_migrations"])
            ]

    def apply_migration(self, migration: Migration) -> None:
        with self._connection() as conn, conn.transaction():
            conn.execute(Q["migrations_lock"])
            conn.execute(Q["migrations_table"])
            already = conn.execute(
                Q["migration_applied"], {"version": migration.version}
            ).fetchone()
            if already is not None:  # applied by a concurrent `db migrate`
                return
            conn.execute(migration.sql.encode())
            conn.execute(
                Q["record_migration"],
                {"version": migration.version, "name": migration.name, "sha256": migration.sha256},
            )

    def close(self) -> None:
        self._pool.close()


def _stored_hashes(cur: psycopg.Cursor[Any], level: int, start: int, end: int) -> list[bytes]:
    if level == 0:
        cur.execute(Q["event_hashes"], {"start": start, "end": end}, prepare=True)
    else:
        cur.execute(Q["tree_nodes"], {"level": level, "start": start, "end": end}, prepare=True)
    return [bytes(row[0]) for row in cur.fetchall()]


def _node_columns(nodes: list[tuple[int, int, bytes]]) -> dict[str, list[Any]]:
    return {
        "levels": [n[0] for n in nodes],
        "idxs": [n[1] for n in nodes],
        "hashes": [n[2] for n in nodes],
    }


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
