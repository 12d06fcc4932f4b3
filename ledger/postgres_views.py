"""View sessions on PostgreSQL: one connection, COPY for new rows, tracking in the same
transaction. The SQL of reads and writes is composed from ``TableSpec`` names (never
from input) with ``psycopg.sql``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import IsolationLevel, sql
from psycopg.types.json import Jsonb

from .sqlfiles import queries
from .views import Kind, Row, TableSpec, ViewSession, unique_row

__all__ = ["PostgresViewSession"]

Q = queries("postgres")


class PostgresViewSession(ViewSession):
    backend = "postgres"

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        conn.execute("SET TIME ZONE 'UTC'")
        row = conn.execute(Q["view_schema"]).fetchone()
        self._schema = str(row[0]) if row else "public"
        self._scratch: set[str] = set()

    @contextmanager
    def transaction(self, *, snapshot: bool = False) -> Iterator[None]:
        self._conn.isolation_level = IsolationLevel.REPEATABLE_READ if snapshot else None
        try:
            with self._conn.transaction():
                yield
        finally:
            self._conn.isolation_level = None

    def _tracking(self, query: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        found: tuple[Any, ...] | None = self._conn.execute(Q[query], params).fetchone()
        return found

    def _live(self, table: TableSpec) -> sql.Composable:
        return sql.Identifier(self._schema, table.name)

    def fetch(self, table: TableSpec, where: Mapping[str, Any]) -> Row | None:
        query = sql.SQL("SELECT {} FROM {} WHERE {} LIMIT 2").format(
            _columns(table),
            sql.Identifier(table.name),
            sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in where),
        )
        found = self._conn.execute(query, list(where.values())).fetchall()
        return unique_row(table, where, [dict(zip(table.names, r, strict=True)) for r in found])

    def insert(self, table: TableSpec, rows: Sequence[Row]) -> None:
        if not rows:
            return
        json_columns = [c.name for c in table.columns if c.kind is Kind.JSON]
        query = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table.name), _columns(table)
        )
        with self._conn.cursor() as cur, cur.copy(query) as copy:
            for row in rows:
                if json_columns:
                    row = {**row, **{c: _json(row[c]) for c in json_columns}}
                copy.write_row([row[name] for name in table.names])

    def update(self, table: TableSpec, rows: Sequence[Row]) -> None:
        if not rows:
            return
        values = [name for name in table.names if name not in table.key]
        query = sql.SQL("UPDATE {} SET {} WHERE {}").format(
            sql.Identifier(table.name),
            sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(v)) for v in values),
            sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in table.key),
        )
        params = [
            [_json(row[v]) if table.kinds[v] is Kind.JSON else row[v] for v in values]
            + [row[k] for k in table.key]
            for row in rows
        ]
        with self._conn.cursor() as cur:
            cur.executemany(query, params)

    def scan(self, table: TableSpec, *, scratch: bool = False) -> Iterator[Row]:
        source = sql.Identifier("pg_temp", table.name) if scratch else self._live(table)
        query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
            _columns(table),
            source,
            sql.SQL(", ").join(
                sql.SQL('{} COLLATE "C"').format(sql.Identifier(k)) for k in table.key
            ),
        )
        with self._conn.cursor() as cur:
            cur.execute(query)
            for row in cur:
                yield dict(zip(table.names, row, strict=True))

    def use_scratch(self, tables: Sequence[TableSpec]) -> None:
        for table in tables:
            if table.name in self._scratch:
                continue
            self._conn.execute(
                sql.SQL(
                    "CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
                    "INCLUDING INDEXES)"
                ).format(sql.Identifier(table.name), self._live(table))
            )
            self._scratch.add(table.name)

    def clear(self, tables: Sequence[TableSpec]) -> None:
        for table in tables:
            self._conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table.name)))

    def query(self, table: TableSpec, text: str, params: Mapping[str, Any]) -> list[Row]:
        statement = text.replace("{columns}", _columns(table).as_string(self._conn))
        rows = self._conn.execute(statement.encode(), params).fetchall()
        return [dict(zip(table.names, row, strict=True)) for row in rows]

    def close(self) -> None:
        self._conn.close()


def _columns(table: TableSpec) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(name) for name in table.names)


def _json(value: Any) -> Any:
    return None if value is None else Jsonb(value)
