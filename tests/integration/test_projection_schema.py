"""The projection tables and time-series views the migrations create, on both backends:
every table exactly as projections/tables.py (and streams/slo_store.py, for slo_windows)
specifies it, and the views' rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from psycopg.types.json import Jsonb

from ledger.sqlite_views import to_sqlite
from ledger.views import Kind, TableSpec
from projections import tables
from streams.slo_store import SLO_WINDOWS
from tests.support.databases import superuser_connection

SPECS: list[TableSpec] = [getattr(tables, name) for name in tables.__all__] + [SLO_WINDOWS]

# How each backend declares a column of each kind (PostgreSQL: information_schema's udt_name).
POSTGRES_TYPES = {
    Kind.TEXT: "text",
    Kind.INT: "int8",
    Kind.DECIMAL: "numeric",
    Kind.TIME: "timestamptz",
    Kind.BOOL: "bool",
    Kind.JSON: "jsonb",
    Kind.POSITIONS: "_int8",
}
SQLITE_TYPES = {
    Kind.TEXT: "TEXT",
    Kind.INT: "INTEGER",
    Kind.DECIMAL: "TEXT",
    Kind.TIME: "TEXT",
    Kind.BOOL: "INTEGER",
    Kind.JSON: "TEXT",
    Kind.POSITIONS: "TEXT",
}

# On TimescaleDB these are hypertables: their primary key also holds the time column.
HYPERTABLE_TIME = {
    "transactions": "trading_time",
    "orders": "placed_at",
    "trade_decisions": "decided_at",
    "market_data_usage": "used_at",
    "risk_calculations": "calculated_at",
    "compliance_checks": "performed_at",
    "user_actions": "occurred_at",
    "dora_changes": "started_at",
    "slo_breaches": "window_end",
    "slo_windows": "bucket_start",
}

VIEWS = {
    "compliance_failures_hourly": [
        ("hour", "timestamptz"),
        ("control", "text"),
        ("checks", "int8"),
        ("failures", "int8"),
    ],
    "dora_metrics": [
        ("service", "text"),
        ("day", "timestamptz"),
        ("deployments", "int8"),
        ("lead_time_seconds", "numeric"),
        ("change_failure_rate", "numeric"),
        ("time_to_restore_seconds", "numeric"),
    ],
}


def test_the_spec_has_all_fifteen_tables() -> None:
    assert [spec.name for spec in SPECS] == [
        "compliance_checks",
        "deployments",
        "dora_changes",
        "dora_requests",
        "market_data_usage",
        "model_versions",
        "orders",
        "risk_calculations",
        "rollbacks",
        "shadow_comparisons",
        "slo_breaches",
        "trade_decisions",
        "transactions",
        "user_actions",
        "slo_windows",  # the SLO worker's, beside the projections
    ]


class Database:
    """SQL on a migrated ledger database as its owner, the same way on both backends."""

    def __init__(self, backend: str, url: str) -> None:
        self.backend = backend
        self._url = url

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        if self.backend == "sqlite":
            conn = sqlite3.connect(self._url.removeprefix("sqlite:///"), isolation_level=None)
            try:
                yield conn
            finally:
                conn.close()
        else:
            with superuser_connection(self._url) as pg:
                pg.execute("SET TIME ZONE 'UTC'")
                yield pg

    def rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.backend == "postgres":
            query = query.replace("?", "%s")
        with self._connect() as conn:
            return [tuple(row) for row in conn.execute(query, params).fetchall()]

    def insert(self, spec: TableSpec, rows: Sequence[dict[str, Any]]) -> None:
        marks = ", ".join("?" if self.backend == "sqlite" else "%s" for _ in spec.names)
        query = f"INSERT INTO {spec.name} ({', '.join(spec.names)}) VALUES ({marks})"
        with self._connect() as conn:
            for row in rows:
                conn.execute(query, [self._value(spec.kinds[n], row[n]) for n in spec.names])

    def _value(self, kind: Kind, value: Any) -> Any:
        if self.backend == "sqlite":
            return to_sqlite(kind, value)
        return Jsonb(value) if kind is Kind.JSON and value is not None else value

    def timescale(self) -> bool:
        if self.backend == "sqlite":
            return False
        found = self.rows("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
        return bool(found)

    def columns(self, relation: str) -> list[tuple[str, str]]:
        """(name, declared type) of every column, in order."""
        if self.backend == "sqlite":
            return [(r[1], r[2]) for r in self.rows(f"PRAGMA table_info({relation})")]
        return self.rows(
            "SELECT column_name, udt_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? "
            "ORDER BY ordinal_position",
            (relation,),
        )

    def primary_key(self, table: str) -> tuple[str, ...]:
        if self.backend == "sqlite":
            info = [r for r in self.rows(f"PRAGMA table_info({table})") if r[5] > 0]
            return tuple(r[1] for r in sorted(info, key=lambda r: r[5]))
        found = self.rows(
            "SELECT a.attname FROM pg_index i "
            "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k (attnum, n) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = ?::regclass AND i.indisprimary ORDER BY k.n",
            (table,),
        )
        return tuple(r[0] for r in found)

    def unique_indexes(self, table: str) -> list[tuple[str, ...]]:
        """The columns of every unique index but the primary key's."""
        if self.backend == "sqlite":
            names = [r[1] for r in self.rows(f"PRAGMA index_list({table})") if r[2] and r[3] == "c"]
            return [tuple(r[2] for r in self.rows(f"PRAGMA index_info({name})")) for name in names]
        found = self.rows(
            "SELECT i.indexrelid::regclass::text, array_agg(a.attname ORDER BY k.n) "
            "FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k (attnum, n) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = ?::regclass AND i.indisunique AND NOT i.indisprimary "
            "GROUP BY 1 ORDER BY 1",
            (table,),
        )
        return [tuple(r[1]) for r in found]


@pytest.fixture
def db(backend: str, url: str) -> Database:
    return Database(backend, url)


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_every_table_has_exactly_the_spec_columns_in_order(db: Database, spec: TableSpec) -> None:
    types = SQLITE_TYPES if db.backend == "sqlite" else POSTGRES_TYPES
    assert db.columns(spec.name) == [(c.name, types[c.kind]) for c in spec.columns]


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_the_key_is_the_primary_key_and_a_stream_has_one_row(db: Database, spec: TableSpec) -> None:
    key, stream = spec.key, ("stream_id",)
    if db.timescale() and spec.name in HYPERTABLE_TIME:
        key, stream = (*key, HYPERTABLE_TIME[spec.name]), (*stream, HYPERTABLE_TIME[spec.name])
    assert db.primary_key(spec.name) == key
    expected = [stream] if "stream_id" in spec.names else []
    assert db.unique_indexes(spec.name) == expected


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_postgres_decimals_are_unconstrained_and_the_writer_may_write(db: Database) -> None:
    constrained = db.rows(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND udt_name = 'numeric' "
        "AND numeric_precision IS NOT NULL"
    )
    assert constrained == []
    for spec in SPECS:
        allowed = db.rows(
            "SELECT has_table_privilege('regledger_writer', ?, 'SELECT, INSERT, UPDATE, DELETE'), "
            "has_table_privilege('regledger_writer', ?, 'TRUNCATE')",
            (spec.name, spec.name),
        )
        assert allowed == [(True, False)], spec.name
    for view in VIEWS:
        assert db.rows("SELECT has_table_privilege('regledger_writer', ?, 'SELECT')", (view,)) == [
            (True,)
        ]


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_the_views_have_exactly_their_columns(db: Database, view: str) -> None:
    columns = db.columns(view)
    assert [name for name, _ in columns] == [name for name, _ in VIEWS[view]]
    if db.backend == "postgres":
        assert columns == VIEWS[view]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _exact(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Decimals as text, so the scale is compared too (Decimal('1.0') == Decimal('1'))."""
    return [tuple(str(v) if isinstance(v, Decimal) else v for v in row) for row in rows]


def _check(check_id: str, control: str, passed: bool, performed_at: str) -> dict[str, Any]:
    return {
        "check_id": check_id,
        "client_order_id": "ORD-1",
        "control": control,
        "passed": passed,
        "observed": Decimal("101.50"),
        "threshold": Decimal("100"),
        "evidence": {"source": "test"},
        "performed_by": "risk-engine",
        "performed_at": _at(performed_at),
        "position": int(check_id.removeprefix("C")),
    }


def test_compliance_failures_hourly(db: Database) -> None:
    db.insert(
        tables.COMPLIANCE_CHECKS,
        [
            _check("C1", "PRICE_COLLAR", True, "2026-03-02T07:15:36.005000+00:00"),
            _check("C2", "PRICE_COLLAR", False, "2026-03-02T07:59:59.999999+00:00"),
            _check("C3", "MAX_ORDER_VALUE", False, "2026-03-02T08:00:00.000000+00:00"),
            _check("C4", "PRICE_COLLAR", True, "2026-03-02T08:30:00.000000+00:00"),
        ],
    )
    got = db.rows("SELECT * FROM compliance_failures_hourly ORDER BY hour, control")
    if db.backend == "sqlite":
        assert got == [
            ("2026-03-02T07:00:00.000000+00:00", "PRICE_COLLAR", 2, 1),
            ("2026-03-02T08:00:00.000000+00:00", "MAX_ORDER_VALUE", 1, 1),
            ("2026-03-02T08:00:00.000000+00:00", "PRICE_COLLAR", 1, 0),
        ]
    else:
        assert got == [
            (datetime(2026, 3, 2, 7, tzinfo=UTC), "PRICE_COLLAR", 2, 1),
            (datetime(2026, 3, 2, 8, tzinfo=UTC), "MAX_ORDER_VALUE", 1, 1),
            (datetime(2026, 3, 2, 8, tzinfo=UTC), "PRICE_COLLAR", 1, 0),
        ]


def _change(
    ticket: str,
    service: str,
    started_at: str,
    lead: str,
    restore: str | None = None,
    *,
    failed: bool = False,
) -> dict[str, Any]:
    started = _at(started_at)
    return {
        "change_ticket": ticket,
        "service": service,
        "requested_at": started - timedelta(seconds=float(lead)),
        "started_at": started,
        "lead_time_seconds": Decimal(lead),
        "failed": failed,
        "restored_at": None if restore is None else started + timedelta(seconds=float(restore)),
        "time_to_restore_seconds": None if restore is None else Decimal(restore),
        "positions": [int(ticket.removeprefix("CHG-")), 100 + int(ticket.removeprefix("CHG-"))],
        "stream_id": f"stream-{ticket}",
    }


def test_dora_metrics(db: Database) -> None:
    db.insert(
        tables.DORA_CHANGES,
        [
            _change("CHG-1", "pricing", "2026-03-02T00:00:00.000000+00:00", "3600.5"),
            _change(
                "CHG-2",
                "pricing",
                "2026-03-02T12:30:00.000000+00:00",
                "7200.25",
                "1234.5678",
                failed=True,
            ),
            _change("CHG-3", "pricing", "2026-03-02T23:59:59.999999+00:00", "100.1"),
            _change("CHG-4", "risk", "2026-03-03T09:00:00.000000+00:00", "60"),
        ],
    )
    got = db.rows("SELECT * FROM dora_metrics ORDER BY service, day")
    # pricing on 2 March: lead (3600.5 + 7200.25 + 100.1) / 3 = 3633.61666...;
    # 1 failure of 3; restore 1234.5678 (the failed change's). risk: no failure.
    if db.backend == "sqlite":
        assert got == [
            ("pricing", "2026-03-02T00:00:00.000000+00:00", 3, 3633.617, 0.3333, 1234.568),
            ("risk", "2026-03-03T00:00:00.000000+00:00", 1, 60.0, 0.0, None),
        ]
    else:
        assert _exact(got) == _exact(
            [
                (
                    "pricing",
                    datetime(2026, 3, 2, tzinfo=UTC),
                    3,
                    Decimal("3633.617"),
                    Decimal("0.3333"),
                    Decimal("1234.568"),
                ),
                (
                    "risk",
                    datetime(2026, 3, 3, tzinfo=UTC),
                    1,
                    Decimal("60.000"),
                    Decimal("0.0000"),
                    None,
                ),
            ]
        )
