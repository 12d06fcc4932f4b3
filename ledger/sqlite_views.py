"""View sessions on SQLite: one connection of their own, ``BEGIN IMMEDIATE`` transactions.

SQLite has no decimal, timestamp or array types, so values are stored as text a reader
turns back exactly: decimals as written, times as ISO 8601 UTC with microseconds
(``2026-03-02T07:15:36.005000+00:00``, which sorts as time does), JSON compact with
sorted keys, booleans as 0/1.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .sqlfiles import queries
from .views import Kind, Row, TableSpec, ViewSession, unique_row

__all__ = ["SQLiteViewSession", "to_sqlite"]

Q = queries("sqlite")


def _time_out(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _json_out(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_OUT: dict[Kind, Callable[[Any], Any]] = {
    Kind.TEXT: str,
    Kind.INT: int,
    Kind.DECIMAL: str,
    Kind.TIME: _time_out,
    Kind.BOOL: int,
    Kind.JSON: _json_out,
    Kind.POSITIONS: _json_out,
}
_IN: dict[Kind, Callable[[Any], Any]] = {
    Kind.TEXT: str,
    Kind.INT: int,
    Kind.DECIMAL: Decimal,
    Kind.TIME: datetime.fromisoformat,
    Kind.BOOL: bool,
    Kind.JSON: json.loads,
    Kind.POSITIONS: json.loads,
}


def to_sqlite(kind: Kind, value: Any) -> Any:
    """How SQLite stores ``value`` of ``kind`` (None stays NULL)."""
    return None if value is None else _OUT[kind](value)


def _param(value: Any) -> Any:
    """A query parameter as the stored values it is compared with (lists as JSON)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return _time_out(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return _json_out(list(value))
    return value


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SQLiteViewSession(ViewSession):
    backend = "sqlite"

    def __init__(self, path: str, timeout_s: float) -> None:
        # One thread at a time, but not always the one that opened it (a runner may
        # be built in one thread and follow in another).
        self._conn = sqlite3.connect(
            path, timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._scratch: set[str] = set()

    @contextmanager
    def transaction(self, *, snapshot: bool = False) -> Iterator[None]:
        # A deferred transaction reads one snapshot (WAL); an immediate one also holds
        # the write lock from the start, so two runners never interleave.
        self._conn.execute("BEGIN" if snapshot else "BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _tracking(self, query: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        found: tuple[Any, ...] | None = self._conn.execute(Q[query], params).fetchone()
        return found

    def _row(self, table: TableSpec, values: Sequence[Any]) -> Row:
        return {
            name: None if value is None else _IN[table.kinds[name]](value)
            for name, value in zip(table.names, values, strict=True)
        }

    def _values(self, table: TableSpec, row: Row, names: Sequence[str]) -> list[Any]:
        return [to_sqlite(table.kinds[name], row[name]) for name in names]

    def fetch(self, table: TableSpec, where: Mapping[str, Any]) -> Row | None:
        condition = " AND ".join(f"{_ident(k)} = ?" for k in where)
        found = self._conn.execute(
            f"SELECT {_columns(table)} FROM {_ident(table.name)} WHERE {condition} LIMIT 2",
            [to_sqlite(table.kinds[k], v) for k, v in where.items()],
        ).fetchall()
        return unique_row(table, where, [self._row(table, values) for values in found])

    def insert(self, table: TableSpec, rows: Sequence[Row]) -> None:
        marks = ", ".join("?" for _ in table.names)
        self._conn.executemany(
            f"INSERT INTO {_ident(table.name)} ({_columns(table)}) VALUES ({marks})",
            [self._values(table, row, table.names) for row in rows],
        )

    def update(self, table: TableSpec, rows: Sequence[Row]) -> None:
        values = [name for name in table.names if name not in table.key]
        assignments = ", ".join(f"{_ident(v)} = ?" for v in values)
        where = " AND ".join(f"{_ident(k)} = ?" for k in table.key)
        self._conn.executemany(
            f"UPDATE {_ident(table.name)} SET {assignments} WHERE {where}",
            [self._values(table, row, [*values, *table.key]) for row in rows],
        )

    def scan(self, table: TableSpec, *, scratch: bool = False) -> Iterator[Row]:
        source = ("temp." if scratch else "main.") + _ident(table.name)
        order = ", ".join(_ident(k) for k in table.key)
        cursor = self._conn.execute(f"SELECT {_columns(table)} FROM {source} ORDER BY {order}")
        for values in cursor:
            yield self._row(table, values)

    def use_scratch(self, tables: Sequence[TableSpec]) -> None:
        for table in tables:
            if table.name in self._scratch:
                continue
            found = self._conn.execute(Q["view_table_sql"], {"name": table.name}).fetchone()
            if found is None:
                raise LookupError(f"table {table.name} does not exist; run `regledger db migrate`")
            # The live table's own definition, as a temporary table that shadows it here.
            ddl = re.sub(r"^CREATE TABLE", "CREATE TEMP TABLE", str(found[0]), count=1)
            self._conn.execute(ddl)
            self._scratch.add(table.name)

    def clear(self, tables: Sequence[TableSpec]) -> None:
        for table in tables:
            self._conn.execute(f"DELETE FROM {_ident(table.name)}")

    def query(self, table: TableSpec, sql: str, params: Mapping[str, Any]) -> list[Row]:
        statement = sql.replace("{columns}", _columns(table))
        bound = {name: _param(value) for name, value in params.items()}
        return [self._row(table, values) for values in self._conn.execute(statement, bound)]

    def close(self) -> None:
        self._conn.close()


def _columns(table: TableSpec) -> str:
    return ", ".join(_ident(name) for name in table.names)
