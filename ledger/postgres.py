"""The chain store on PostgreSQL (psycopg 3, a connection pool), TimescaleDB when present.

Appends take a transaction-scoped advisory lock, read the head and the database
clock, seal the batch and send it with one binary COPY. The COPY rows are built
from the hashed messages themselves: the canonical encoding frames fields exactly
as binary COPY does (docs/FORMAT.md), so only the timestamp frame is rewritten.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg_pool
from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking
from psycopg import errors as pg_errors

from .chain import ChainHead, LedgerRecord, Link, seal
from .errors import StoreUnavailableError
from .settings import Settings, redact_url
from .sqlfiles import queries
from .store import AppliedMigration, ChainStore, Migration
from .validation import PreparedEvent

__all__ = ["PostgresChainStore", "copy_payload", "parse_links"]

Q = queries("postgres")

_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"
_FIELD_COUNT = b"\x00\x08"
_HASH_FRAME = struct.pack(">I", 32)
_TIMESTAMP = struct.Struct(">Iq")
# PostgreSQL counts timestamps in microseconds from 2000-01-01; the ledger from 1970-01-01.
_PG_EPOCH_OFFSET_US = 946_684_800_000_000


def copy_payload(messages: Sequence[bytes], hashes: Sequence[bytes], recorded_at_us: int) -> bytes:
    """Binary COPY data for sealed events, in the column order of the ``copy_in`` query.

    A message is ``F(position) F(version) F(recorded_at) F(id) F(topic) F(state) F(prev)``
    (24 + 12 bytes before the id); the COPY row is the same with PostgreSQL's
    timestamp in the third frame, and ``F(hash)`` appended.
    """
    stamp = _TIMESTAMP.pack(8, recorded_at_us - _PG_EPOCH_OFFSET_US)
    parts = [_COPY_SIGNATURE]
    for message, digest in zip(messages, hashes, strict=True):
        parts += (_FIELD_COUNT, message[:24], stamp, message[36:], _HASH_FRAME, digest)
    parts.append(_COPY_TRAILER)
    return b"".join(parts)


_ROW_HEAD = struct.Struct(">hiqiqiqi")  # field count, F(position), F(version), F(time), len(id)
_LEN = struct.Struct(">i")


def parse_links(rows: Iterator[Any]) -> Iterator[Link]:
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
        if len(buf) - offset == 2:  # the trailer
            break
        _, _, position, _, _, _, recorded_at_us, id_len = head(buf, offset)
        end = offset + 42 + id_len
        end += 4 + length(buf, end)[0]
        end += 4 + length(buf, end)[0]
        yield Link(
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

    def __init__(self, settings: Settings, *, min_size: int = 1) -> None:
        self.url = settings.database_url
        self._lock_timeout = settings.lock_timeout_s
        try:
            with psycopg.connect(self.url, connect_timeout=10) as probe:
                timescale = probe.execute(Q["is_timescale"]).fetchone()
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(
                f"cannot connect to {redact_url(self.url)}: {_first_line(exc)}; is PostgreSQL "
                "running, and is REGLEDGER_DATABASE_URL right?"
            ) from exc
        self.timescale = bool(timescale and timescale[0])
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = (
            psycopg_pool.ConnectionPool(
                self.url,
                min_size=min(min_size, settings.pool_size),
                max_size=settings.pool_size,
                kwargs={"autocommit": True},
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
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            if isinstance(exc, pg_errors.LockNotAvailable | pg_errors.QueryCanceled):
                raise
            raise StoreUnavailableError(
                f"lost the connection to {redact_url(self.url)}: {_first_line(exc)}"
            ) from exc

    # --- appending -------------------------------------------------------------------

    def append(
        self, events: Sequence[PreparedEvent], tracking: Tracking | None = None
    ) -> list[int]:
        with self._connection() as conn:
            try:
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute(Q["append_lock"], prepare=True)
                    now_us, last, last_hash, last_time = cur.execute(
                        Q["head_and_clock"], prepare=True
                    ).fetchone() or (0, None, b"", 0)
                    head = (
                        ChainHead() if last is None else ChainHead(last + 1, last_hash, last_time)
                    )
                    if self.timescale and events:
                        self._check_versions(cur, events)
                    if tracking is not None:
                        self._insert_tracking(cur, tracking)
                    if events:
                        batch = seal(head, events, now_us)
                        payload = copy_payload(
                            batch.messages,
                            [r.hash for r in batch.records],
                            batch.head.last_recorded_at_us,
                        )
                        with cur.copy(Q["copy_in"]) as copy:
                            copy.write(payload)
                        cur.execute(Q["notify"])
                        return list(range(head.next_position, batch.head.next_position))
                    return []
            except pg_errors.UniqueViolation as exc:
                raise IntegrityError(
                    f"{_first_line(exc)}: an event with that originator_id and version is "
                    "already recorded; nothing of the batch was stored"
                ) from exc

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
            conn = psycopg.connect(self.url, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(
                f"cannot connect to {redact_url(self.url)}: {_first_line(exc)}"
            ) from exc
        try:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            with conn.cursor().copy(Q["links_copy"], {"first": first, "last": last}) as copy:
                yield parse_links(iter(copy))
                for _ in copy:  # drain what the walk did not read, or the connection stays busy
                    pass
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

    # --- notification of appends -----------------------------------------------------

    def watch(self, stopped: Callable[[], bool], appended: Callable[[], None]) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(Q["listen"])
            # Appends committed before LISTEN took effect sent no notification we can see.
            appended()
            while not stopped():
                for _ in conn.notifies(timeout=0.1, stop_after=1):
                    appended()

    # --- schema ----------------------------------------------------------------------

    def applied_migrations(self) -> list[AppliedMigration]:
        with self._connection() as conn:
            conn.execute(Q["migrations_table"])
            return [
                AppliedMigration(v, n, s, a.isoformat())
                for v, n, s, a in conn.execute(Q["applied_migrations"])
            ]

    def apply_migration(self, migration: Migration) -> None:
        with self._connection() as conn, conn.transaction():
            conn.execute(Q["migrations_lock"])
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


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
