"""The projections on the seeded demo day, on both backends: every view's exact content,
lineage, exactly once across a SIGKILL and with two runners at once, unknown event
types, rebuild and the differences it finds, and the CLI.

The demo day is recorded once per backend into a template ledger; each test that writes
gets its own copy (SQLite's backup API, PostgreSQL's CREATE DATABASE ... TEMPLATE).
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from click.testing import CliRunner
from eventsourcing.persistence import StoredEvent

from console.cli import cli
from console.trail import open_trail
from domain.base import natural_id
from domain.trading import Execution, Order
from ledger import Settings, open_store
from ledger.store import ChainStore
from ledger.validation import BatchValidator
from projections.catalogue import PROJECTIONS, by_name
from projections.core import ProjectionError, UnknownEventType, topic
from projections.lineage import failed_checks, lineage
from projections.rebuild import Difference, canonical_values, checksums, rebuild
from projections.runner import BatchReport, ProjectionRunner
from projections.tables import DEPLOYMENTS, ORDERS, ROLLBACKS, TRANSACTIONS
from tests.support.databases import copy_of, recorded_demo, superuser_connection

ROOT = Path(__file__).resolve().parents[2]
HEAD = 1809  # the demo day records positions 0..1809
NAMES = [
    "transactions", "orders", "trade_decisions", "market_data", "risk_calculations",
    "compliance_checks", "deployments", "rollbacks", "dora_metrics", "user_actions",
    "shadow_comparisons", "model_versions", "slo_breaches",
]  # fmt: skip

# (rows, sha256 of the canonical lines) of every table after the demo day (seed 7, one
# day). The demo is deterministic (one seeded generator, a simulated clock) and canonical
# rows are backend-independent, so the same literals hold on SQLite and on PostgreSQL.
# fmt: off
CHECKSUMS = {
    "transactions": (220, "9ac6465a599f6656e4b9eee18862e51cc5700ede57fa92a5a47c2dc5e0779485"),
    "orders": (158, "a06ea64c4a04594d488953cbb9121d048713ffa0d3b32b9f1e5fc372f2ab754b"),
    "trade_decisions": (345, "fe78af239895f09f71870373f94f1de6b4f7b45ca144a7316b72011b0f5d0598"),
    "market_data_usage": (345, "1ab6f30bb5656184c91bee1e313b77330f4da8c4b0970a223e64b980a68dc4f9"),
    "risk_calculations": (34, "91469a9a26bb59d9d20046860f4b9b9cf8d7fd319e6731b1db0e039049e5da85"),
    "compliance_checks": (673, "05ad4cb93a5fdda23bf1a2bd70792ecbce7f8c90b1cba84b45cbb46981336975"),
    "deployments": (3, "e0be6ab3187fd6556856bcfe822d7c5d4540add1ac2881c9ad249a15afa9365a"),
    "rollbacks": (1, "ed8bdcedc3e77b908c5106e7f952263f1554dd74d6ebc6957b9c50fe8a8f6844"),
    "dora_requests": (3, "e3916936e55ad318e816628a07773e4e5307e72b10ba46d1f11a0539d16f8988"),
    "dora_changes": (3, "cc51c6fe4b386409a0500b532701e699ff622c21938f8a13d5b7af39027b32d5"),
    "user_actions": (15, "d99d8012b3f11b4cebf3c3699a5d7fe738c8a61bec4c52052bcc70c74baad131"),
    "shadow_comparisons": (1, "e1f9c9820a7a2aa43e454aecc4f78ffba7f318adcd5fb2c6a6471b16fe2c3cf4"),
    "model_versions": (2, "38c2bdbb1472e940b9d608ea6259d170978616f8ff89c109e9041722aaa58a04"),
    "slo_breaches": (0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
}

_RTS22 = {
    "isin": "NL0010273215", "instrument_description": None, "cfi": None,
    "notional_currency_1": None, "notional_currency_2": None, "venue": "XAMS",
    "executing_entity_lei": "529900T8BM49AURSDO55", "buyer_lei": "724500937F740MHCX307",
    "seller_lei": "529900T8BM49AURSDO55", "investment_decision": "ALGO-MOM-31",
    "execution_decision": "ALGO-SOR-7", "trading_capacity": "DEAL", "currency": "EUR",
    "recorded_by": "fix-drop-copy",
}
_ORDER = {
    "decision_id": None, "currency": "EUR", "trading_capacity": "DEAL",
    "executing_entity_lei": "529900T8BM49AURSDO55", "investment_decision": "ALGO-MOM-31",
    "execution_decision": "ALGO-SOR-7", "placed_by": "order-management",
}
_T = "2026-03-02T{}+00:00".format
SPECS = {spec.name: spec for spec in (TRANSACTIONS, ORDERS, DEPLOYMENTS, ROLLBACKS)}
# Canonical values (decimals as text, times as UTC ISO 8601) of the rows that tell the story.
ROWS = {
    ("transactions", "EXE-20260302-7-00097"): {  # amended: a venue price correction
        "execution_id": "EXE-20260302-7-00097", "client_order_id": "ORD-20260302-7-00077",
        **_RTS22, "quantity": "35", "price": "692.92", "trading_time": _T("10:40:48.554000"),
        "status": "amended", "recorded_at": _T("10:40:48.556000"),
        "amended_at": _T("10:40:50.000001"), "cancelled_at": None,
        "correction_reason": "venue trade correction: price 692.91 -> 692.92 (XAMS)",
        "positions": [803, 804], "stream_id": "d7759367-f89e-58ae-a350-49b33e1bbca8",
    },
    ("transactions", "EXE-20260302-7-00136"): {  # cancelled: busted by the venue
        "execution_id": "EXE-20260302-7-00136", "client_order_id": "ORD-20260302-7-00107",
        **_RTS22, "quantity": "10", "price": "696.03", "trading_time": _T("12:16:48.426000"),
        "status": "cancelled", "recorded_at": _T("12:16:48.428000"), "amended_at": None,
        "cancelled_at": _T("12:20:50.000001"),
        "correction_reason": "trade busted by XAMS under its erroneous-trade rule",
        "positions": [1129, 1134], "stream_id": "55855572-78da-592e-9f13-97f368169f68",
    },
    ("orders", "ORD-20260302-7-00043"): {
        "client_order_id": "ORD-20260302-7-00043", **_ORDER, "isin": "DE0007164600",
        "venue": "XETR", "side": "BUY", "quantity": "100", "limit_price": "179.93",
        "status": "amended", "placed_at": _T("09:02:50.004001"), "amendments": 1,
        "amended_at": _T("09:03:50.000001"), "cancelled_at": None,
        "reason": "trader request: join the best bid with half the size",
        "positions": [446, 449], "stream_id": "04aef1c9-3347-5ff8-8648-4033cf6e8fae",
    },
    ("orders", "ORD-20260302-7-00122"): {
        "client_order_id": "ORD-20260302-7-00122", **_ORDER, "isin": "NL0010273215",
        "venue": "XAMS", "side": "SELL", "quantity": "55", "limit_price": "699.82",
        "status": "cancelled", "placed_at": _T("13:02:50.004001"), "amendments": 0,
        "amended_at": None, "cancelled_at": _T("13:20:50.000001"),
        "reason": "strategy window closed: unfilled remainder cancelled",
        "positions": [1287, 1357], "stream_id": "508b2fb8-642d-59bf-a0d1-d517dbf7a640",
    },
    ("deployments", "CHG-20260302-7-00001"): {  # the canary, rolled back on latency
        "change_ticket": "CHG-20260302-7-00001", "service": "signal-engine", "version": "4.7.0",
        "commit_hash": "f5a284011d50cf1f038da7f96b739392ed5e8a50", "strategy": "CANARY",
        "emergency": False, "requested_by": "d.novak", "requested_at": _T("08:30:20.000001"),
        "approved_by": "m.rossi", "approved_at": _T("08:50:20.000001"), "approval": "prior",
        "retroactive_due": None, "started_by": "d.novak", "started_at": _T("09:15:20.000001"),
        "finished_by": "k.weber", "finished_at": _T("09:41:20.000001"),
        "outcome": "rolled_back", "rollback_id": "RB-20260302-7-00001", "rollback_level": 1,
        "rollback_trigger": "LATENCY", "sod_violations": [], "positions": [319, 396, 493, 587],
        "stream_id": "0272ec08-7ef8-5528-bb73-320f49a8e3ae",
    },
    ("deployments", "CHG-20260302-7-00002"): {  # the emergency hotfix, approved afterwards
        "change_ticket": "CHG-20260302-7-00002", "service": "order-gateway", "version": "2.3.1",
        "commit_hash": "f7bcd5ed917fd7b25c64ce98c093819bec9a22b4", "strategy": "ROLLING",
        "emergency": True, "requested_by": "k.weber", "requested_at": _T("11:40:20.000001"),
        "approved_by": "m.rossi", "approved_at": _T("16:40:20.000001"),
        "approval": "retroactive", "retroactive_due": "2026-03-03T11:43:20.000001+00:00",
        "started_by": "k.weber", "started_at": _T("11:43:20.000001"), "finished_by": "k.weber",
        "finished_at": _T("11:58:20.000001"), "outcome": "promoted", "rollback_id": None,
        "rollback_level": None, "rollback_trigger": None, "sod_violations": [],
        "positions": [1003, 1008, 1057, 1803], "stream_id": "eb6bfe4e-6f0d-5a2f-87a0-4e3430681ca1",
    },
    ("deployments", "CHG-20260302-7-00003"): {  # rolling, promoted
        "change_ticket": "CHG-20260302-7-00003", "service": "risk-gateway", "version": "3.9.0",
        "commit_hash": "d1ffe3f2c99156d17cc3be1c36e8d5a9de18274b", "strategy": "ROLLING",
        "emergency": False, "requested_by": "d.novak", "requested_at": _T("14:00:20.000001"),
        "approved_by": "m.rossi", "approved_at": _T("14:20:20.000001"), "approval": "prior",
        "retroactive_due": None, "started_by": "d.novak", "started_at": _T("16:05:20.000001"),
        "finished_by": "d.novak", "finished_at": _T("16:25:20.000001"), "outcome": "promoted",
        "rollback_id": None, "rollback_level": None, "rollback_trigger": None,
        "sod_violations": [], "positions": [1457, 1502, 1801, 1802],
        "stream_id": "5fd9b4d6-42b9-50d1-af9c-075b94179334",
    },
    ("rollbacks", "RB-20260302-7-00001"): {
        "rollback_id": "RB-20260302-7-00001", "change_ticket": "CHG-20260302-7-00001",
        "service": "signal-engine", "level": 1, "level_name": "service", "trigger": "LATENCY",
        "reason": "canary p95 decision latency +132 ms over baseline (threshold +100 ms)",
        "evidence": {
            "baseline_p95_ms": "41", "canary_p95_ms": "173", "canary_traffic_pct": "5",
            "metric": "decision latency p95", "threshold": "baseline + 100 ms",
            "window": "2026-03-02T09:20:00+00:00/2026-03-02T09:40:00+00:00",
        },
        "executed_by": "k.weber", "executed_at": _T("09:41:20.000001"), "position": 588,
    },
}

# What PostgreSQL and SQLite return from the SQL views (SQLite: text times, REAL numbers).
_DAY_PG, _DAY_SQLITE = datetime(2026, 3, 2, tzinfo=UTC), "2026-03-02T00:00:00.000000+00:00"
DORA_METRICS = {
    "postgres": [
        ("order-gateway", _DAY_PG, 1, "180.000", "0.0000", None),
        ("risk-gateway", _DAY_PG, 1, "7500.000", "0.0000", None),
        ("signal-engine", _DAY_PG, 1, "2700.000", "1.0000", "1560.000"),
    ],
    "sqlite": [
        ("order-gateway", _DAY_SQLITE, 1, 180.0, 0.0, None),
        ("risk-gateway", _DAY_SQLITE, 1, 7500.0, 0.0, None),
        ("signal-engine", _DAY_SQLITE, 1, 2700.0, 1.0, 1560.0),
    ],
}
FAILURES_HOURLY = [  # (hour, control, checks, failures) where failures > 0
    (8, "MAX_ORDER_VOLUME", 22, 1), (8, "MESSAGE_THROTTLE", 22, 1), (8, "PRICE_COLLAR", 22, 1),
    (9, "PRICE_COLLAR", 21, 1), (11, "MESSAGE_THROTTLE", 17, 2), (11, "PRICE_COLLAR", 17, 2),
    (13, "MAX_ORDER_VOLUME", 14, 1), (15, "MESSAGE_THROTTLE", 12, 1),
]
FAILED_CHECKS = [  # (check_id, control, position), by time
    ("ORD-20260302-7-00028-MESSAGE_THROTTLE", "MESSAGE_THROTTLE", 310),
    ("ORD-20260302-7-00038-MAX_ORDER_VOLUME", "MAX_ORDER_VOLUME", 403),
    ("ORD-20260302-7-00039-PRICE_COLLAR", "PRICE_COLLAR", 407),
    ("ORD-20260302-7-00059-PRICE_COLLAR", "PRICE_COLLAR", 611),
    ("ORD-20260302-7-00089-MESSAGE_THROTTLE", "MESSAGE_THROTTLE", 941),
    ("ORD-20260302-7-00091-PRICE_COLLAR", "PRICE_COLLAR", 952),
    ("ORD-20260302-7-00093-MESSAGE_THROTTLE", "MESSAGE_THROTTLE", 977),
    ("ORD-20260302-7-00096-PRICE_COLLAR", "PRICE_COLLAR", 999),
    ("ORD-20260302-7-00131-MAX_ORDER_VOLUME", "MAX_ORDER_VOLUME", 1386),
    ("ORD-20260302-7-00162-MESSAGE_THROTTLE", "MESSAGE_THROTTLE", 1735),
]
# A decision with market data, risk figures, four checks, an order and two executions.
LINEAGE = [  # (stage, id, positions, summary)
    ("decision", "DEC-20260302-7-00077", (412,),
     "momentum v3.1: SELL DE0007164600 (confidence 0.64)"),
    ("market data", "MD-20260302-7-00077", (411,),
     "BLOOMBERG_BPIPE DE0007164600 snapshot of 2026-03-02T08:53:59.960000+00:00"),
    ("risk", "RISK-20260302-7-00007", (377,),
     "EQ-MOMENTUM VAR 2487250.00 EUR (limit 2500000): within limit"),
    ("risk", "RISK-20260302-7-00008", (378,),
     "EQ-MOMENTUM GROSS_EXPOSURE 29500000.00 EUR (limit 50000000): within limit"),
    ("compliance check", "ORD-20260302-7-00040-PRICE_COLLAR", (413,),
     "PRICE_COLLAR observed 1.11 vs 500: passed"),
    ("compliance check", "ORD-20260302-7-00040-MAX_ORDER_VALUE", (414,),
     "MAX_ORDER_VALUE observed 8996.50 vs 1000000: passed"),
    ("compliance check", "ORD-20260302-7-00040-MAX_ORDER_VOLUME", (415,),
     "MAX_ORDER_VOLUME observed 50 vs 1250: passed"),
    ("compliance check", "ORD-20260302-7-00040-MESSAGE_THROTTLE", (416,),
     "MESSAGE_THROTTLE observed 12 vs 40: passed"),
    ("order", "ORD-20260302-7-00040", (417,),
     "SELL 50 DE0007164600 on XETR, limit 179.93 EUR (new)"),
    ("execution", "EXE-20260302-7-00048", (418,), "25 @ 179.94 EUR on XETR (new)"),
    ("execution", "EXE-20260302-7-00049", (419,), "25 @ 179.94 EUR on XETR (new)"),
]
# Rows after the first four batches of 100 (positions 0..399), all that a runner killed in
# its fifth batch leaves.
ROWS_AT_399 = {
    "transactions": 47, "orders": 36, "trade_decisions": 74, "market_data_usage": 75,
    "risk_calculations": 8, "compliance_checks": 149, "deployments": 1, "rollbacks": 0,
    "dora_requests": 1, "dora_changes": 0, "user_actions": 7, "shadow_comparisons": 0,
    "model_versions": 2, "slo_breaches": 0,
}
# fmt: on


# --- ledgers ------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def recorded(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo day recorded, not projected: every test copies it, nothing connects to it."""
    with recorded_demo(backend, tmp_path_factory.mktemp("recorded")) as url:
        yield url


def _run(store: ChainStore, until: int | None = None, **options: Any) -> list[BatchReport]:
    with ProjectionRunner(store, PROJECTIONS, **options) as runner:
        return runner.run(until)


@pytest.fixture(scope="module")
def demo(recorded: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainStore]:
    """The demo day, projected: shared by the tests that only read."""
    with (
        copy_of(recorded, tmp_path_factory.mktemp("demo")) as url,
        open_store(Settings(database_url=url)) as store,
    ):
        _run(store)
        yield store


@pytest.fixture
def fresh(recorded: str, tmp_path: Path) -> Iterator[ChainStore]:
    """A copy of the demo day of its own, not projected yet."""
    with copy_of(recorded, tmp_path) as url, open_store(Settings(database_url=url)) as store:
        yield store


@pytest.fixture
def projected(fresh: ChainStore) -> ChainStore:
    """A copy of the demo day of its own, projected."""
    assert [(r.first, r.last) for r in _run(fresh)] == [(0, HEAD)]
    return fresh


# --- helpers ------------------------------------------------------------------------------


def table_checksums(store: ChainStore) -> dict[str, tuple[int, str]]:
    with store.view_session() as session:
        return {c.table: (c.rows, c.sha256) for p in PROJECTIONS for c in checksums(session, p)}


def row_counts(store: ChainStore) -> dict[str, int]:
    return {table: rows for table, (rows, _) in table_checksums(store).items()}


def positions(store: ChainStore) -> dict[str, int | None]:
    with ProjectionRunner(store, PROJECTIONS) as runner:
        return {s.name: s.position for s in runner.status()}


def everywhere(position: int) -> dict[str, int | None]:
    return dict.fromkeys(NAMES, position)


def exact(value: Any) -> Any:
    """Decimals as text, so their scale is compared too (Decimal('1.0') == Decimal('1'))."""
    return str(value) if isinstance(value, Decimal) else value


def append_raw(store: ChainStore, event_topic: str, originator: UUID, version: int) -> int:
    """Append one event the domain would never write; return its position."""
    state = b'{"actor":"test","occurred_at":null,"source_event_id":null}'
    validator = BatchValidator(max_event_bytes=1_048_576, known_topics=None)
    (position,) = store.append([StoredEvent(originator, version, event_topic, state)], validator)
    return position


def record_login(url: str, action_id: str) -> None:
    trail = open_trail(Settings(database_url=url))
    try:
        trail.record_user_action(
            action_id=action_id,
            action="LOGIN",
            target="console",
            details={"ip": "10.0.0.7"},
            actor="a.schmidt",
            occurred_at=datetime(2026, 3, 2, 17, tzinfo=UTC),
        )
    finally:
        trail.close()


def owner_sql(url: str, statement: str) -> None:
    """Run ``statement`` as the database owner, past the application."""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)) as db:
            db.execute(statement)
        return
    with superuser_connection(url) as pg:
        pg.execute(statement.encode())


def view_rows(url: str, statement: str) -> list[tuple[Any, ...]]:
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
            return db.execute(statement).fetchall()
    with superuser_connection(url) as pg:
        pg.execute("SET TIME ZONE 'UTC'")
        return [tuple(exact(v) for v in row) for row in pg.execute(statement.encode())]


def invoke(url: str, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.setenv("REGLEDGER_DATABASE_URL", url)
    return CliRunner().invoke(cli, list(args))


# --- 1. every view's content after the demo day -------------------------------------------


def test_every_table_after_the_demo_day(demo: ChainStore) -> None:
    assert positions(demo) == everywhere(HEAD)
    assert table_checksums(demo) == CHECKSUMS


def test_executions_orders_and_deployments_agree_with_the_aggregates(demo: ChainStore) -> None:
    trail = open_trail(Settings(database_url=demo.url))
    try:
        with demo.view_session() as session:
            for kind, table, created, fields in (
                ("execution", TRANSACTIONS, Execution.Recorded, ("quantity", "price", "status")),
                ("order", ORDERS, Order.Placed, ("quantity", "limit_price", "status")),
            ):
                rows = {row[table.key[0]]: row for row in session.scan(table)}
                ids = {
                    r.originator_id for r in demo.select_records(0, None, [topic(created)], 9999)
                }
                assert {str(natural_id(kind, key)) for key in rows} == ids
                for key, row in rows.items():
                    aggregate_id = natural_id(kind, key)
                    aggregate: Any = trail.repository.get(aggregate_id)
                    assert [exact(row[f]) for f in fields] == [
                        exact(getattr(aggregate, f)) for f in fields
                    ], key
                    assert row["stream_id"] == str(aggregate_id)
                    history = demo.records_of(str(aggregate_id))
                    assert row["positions"] == [r.position for r in history], key
            for row in session.scan(DEPLOYMENTS):
                history = demo.records_of(str(natural_id("deployment", row["change_ticket"])))
                assert row["positions"] == [r.position for r in history]
    finally:
        trail.close()


def test_the_rows_that_tell_the_story_field_by_field(demo: ChainStore) -> None:
    with demo.view_session() as session:
        for (name, key), expected in ROWS.items():
            table = SPECS[name]
            row = session.fetch(table, {table.key[0]: key})
            assert row is not None, key
            assert dict(zip(table.names, canonical_values(table, row), strict=True)) == expected
        hotfix = session.fetch(DEPLOYMENTS, {"change_ticket": "CHG-20260302-7-00002"})
    assert hotfix is not None
    assert hotfix["retroactive_due"] == hotfix["started_at"] + timedelta(hours=24)


def test_the_sql_views_and_the_failed_checks(demo: ChainStore, backend: str) -> None:
    assert (
        view_rows(demo.url, "SELECT * FROM dora_metrics ORDER BY service")
        == (DORA_METRICS[backend])
    )
    hourly = view_rows(
        demo.url,
        "SELECT * FROM compliance_failures_hourly WHERE failures > 0 ORDER BY hour, control",
    )

    def hour(h: int) -> Any:
        moment = datetime(2026, 3, 2, h, tzinfo=UTC)
        return moment if backend == "postgres" else moment.isoformat(timespec="microseconds")

    assert hourly == [(hour(h), control, n, f) for h, control, n, f in FAILURES_HOURLY]
    with demo.view_session() as session:
        found = failed_checks(session)
        collars = failed_checks(session, control="PRICE_COLLAR")
        at_eleven = failed_checks(
            session,
            since=datetime(2026, 3, 2, 11, tzinfo=UTC),
            until=datetime(2026, 3, 2, 12, tzinfo=UTC),
        )
    assert [(r["check_id"], r["control"], r["position"]) for r in found] == FAILED_CHECKS
    assert all(r["passed"] is False for r in found)
    assert [r["position"] for r in collars] == [407, 611, 952, 999]
    assert [r["position"] for r in at_eleven] == [941, 952, 977, 999]


# --- 2. lineage -----------------------------------------------------------------------------


def test_lineage_of_a_decision_and_from_its_order_and_execution(demo: ChainStore) -> None:
    with demo.view_session() as session:
        found = lineage(session, "DEC-20260302-7-00077")
        from_order = lineage(session, "ORD-20260302-7-00040")
        from_execution = lineage(session, "EXE-20260302-7-00049")
        with pytest.raises(ProjectionError) as unknown:
            lineage(session, "EXE-NOPE")
    assert [(s.stage, s.id, s.positions, s.summary) for s in found.steps] == LINEAGE
    assert from_order.steps == from_execution.steps == found.steps
    assert (from_order.requested, from_execution.requested) == (
        "ORD-20260302-7-00040",
        "EXE-20260302-7-00049",
    )
    assert str(unknown.value) == (
        "no decision, order or execution has the id 'EXE-NOPE' in the projections; check the "
        "id, or run `regledger projections run`"
    )


def test_lineage_of_an_execution_without_an_order_is_the_execution(demo: ChainStore) -> None:
    with demo.view_session() as session:
        found = lineage(session, "EXE-20260302-7-00086")  # the FX forward, venue XOFF
    assert [(s.stage, s.id, s.positions) for s in found.steps] == [
        ("execution", "EXE-20260302-7-00086", (748,))
    ]


def test_cli_lineage_json_carries_each_position_hash(
    demo: ChainStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = invoke(demo.url, monkeypatch, "lineage", "DEC-20260302-7-00077", "--json")
    assert (result.exit_code, result.stderr) == (0, "")
    found = json.loads(result.stdout)
    assert found["requested"] == "DEC-20260302-7-00077"
    steps = [
        (s["stage"], s["id"], tuple(p["position"] for p in s["positions"]), s["summary"])
        for s in found["steps"]
    ]
    assert steps == LINEAGE
    for step in found["steps"]:
        for p in step["positions"]:
            record = demo.record_at(p["position"])
            assert record is not None and p["hash"] == record.hash.hex()
    assert found["steps"][-1]["row"]["price"] == "179.94"


# --- 3. exactly once across SIGKILL ---------------------------------------------------------


def test_a_runner_killed_before_commit_leaves_only_its_committed_batches(
    fresh: ChainStore, tmp_path: Path
) -> None:
    """The worker stops in its fifth batch of 100 with the rows written and the positions
    advanced, uncommitted; SIGKILL leaves exactly the four batches before it."""
    marker = tmp_path / "in-transaction.json"
    command = [sys.executable, "-m", "tests.support.projection_worker", fresh.url, "100", "5"]
    with subprocess.Popen([*command, str(marker)], cwd=ROOT) as worker:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert worker.poll() is None, "the worker ended before its fifth batch"
            assert time.monotonic() < deadline, "the worker never reached its fifth batch"
            time.sleep(0.01)
        # Paused inside the transaction: nothing of the fifth batch is visible yet.
        assert (positions(fresh), row_counts(fresh)) == (everywhere(399), ROWS_AT_399)
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=30) == -signal.SIGKILL
    assert json.loads(marker.read_text()) == {
        "projections": NAMES,
        "first": 400,
        "last": 499,
        "rows": 100,
    }
    assert (positions(fresh), row_counts(fresh)) == (everywhere(399), ROWS_AT_399)

    assert [(r.first, r.last) for r in _run(fresh)] == [(400, HEAD)]
    assert positions(fresh) == everywhere(HEAD)
    assert table_checksums(fresh) == CHECKSUMS  # nothing twice, nothing missed


# --- 4. two runners at once -----------------------------------------------------------------


def test_two_runners_at_once_apply_every_event_exactly_once(fresh: ChainStore) -> None:
    reports: dict[str, list[BatchReport]] = {}
    ready = threading.Barrier(2)

    def run(name: str) -> None:
        with (
            open_store(Settings(database_url=fresh.url, pool_size=2)) as store,
            ProjectionRunner(store, PROJECTIONS, batch_size=50) as runner,
        ):
            ready.wait(timeout=30)
            reports[name] = []
            for report in runner.batches():
                reports[name].append(report)
                time.sleep(0.02)  # outside any transaction: longer than a conflict backoff

    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(run, "a"), pool.submit(run, "b")]:
            done.result()

    assert reports["a"] and reports["b"], "the runners did not overlap"
    every = [r for name in "ab" for r in reports[name]]
    for name in NAMES:  # each projection's batches, from either runner, tile 0..HEAD once
        batches = sorted((r.first, r.last) for r in every if name in r.projections)
        assert batches == [(first, min(first + 49, HEAD)) for first in range(0, HEAD + 1, 50)]
    assert sum(r.rows for r in every) == 1812  # as one runner alone writes in batches of 50
    assert positions(fresh) == everywhere(HEAD)
    assert table_checksums(fresh) == CHECKSUMS


# --- 5. unknown event types -----------------------------------------------------------------


def test_events_of_aggregates_no_projection_covers_pass_by(projected: ChainStore) -> None:
    position = append_raw(projected, "domain.weather:Forecast.Issued", uuid.uuid4(), 1)
    assert position == HEAD + 1
    assert _run(projected) == [BatchReport(tuple(NAMES), HEAD + 1, HEAD + 1, 0)]
    assert positions(projected) == everywhere(HEAD + 1)
    assert table_checksums(projected) == CHECKSUMS


def test_an_unknown_event_of_a_covered_aggregate_stops_the_runner(projected: ChainStore) -> None:
    """The unknown event aborts its whole batch (here: a login before it, too); the
    projections that do not cover orders go on when run without the orders projection."""
    record_login(projected.url, "UA-TEST-1")
    order = natural_id("order", "ORD-20260302-7-00040")
    assert append_raw(projected, "domain.trading:Order.Disputed", order, 2) == HEAD + 2
    message = (
        f"projection orders has no rule for domain.trading:Order.Disputed (position {HEAD + 2}); "
        "add a handler or declare it ignored, with the reason, in projections/"
    )
    with pytest.raises(UnknownEventType) as stopped:
        _run(projected)
    assert str(stopped.value) == message
    assert positions(projected) == everywhere(HEAD)
    assert table_checksums(projected) == CHECKSUMS  # the login's row was not written either

    others = [p for p in PROJECTIONS if p.name != "orders"]
    with ProjectionRunner(projected, others) as runner:
        assert runner.run() == [
            BatchReport(tuple(n for n in NAMES if n != "orders"), HEAD + 1, HEAD + 2, 1)
        ]
    assert positions(projected) == {**everywhere(HEAD + 2), "orders": HEAD}
    with pytest.raises(UnknownEventType) as again:
        _run(projected)
    assert str(again.value) == message
    assert positions(projected)["orders"] == HEAD
    assert row_counts(projected) == {
        **{t: n for t, (n, _) in CHECKSUMS.items()},
        "user_actions": 16,
    }


# --- 6. rebuild -----------------------------------------------------------------------------


def test_rebuilding_every_projection_gives_the_live_view(demo: ChainStore) -> None:
    for projection in PROJECTIONS:
        report = rebuild(demo, projection)
        assert (report.projection, report.position, report.equal) == (projection.name, HEAD, True)
        assert report.differences == []
        assert report.live == report.rebuilt
        assert {c.table: (c.rows, c.sha256) for c in report.rebuilt} == {
            t.name: CHECKSUMS[t.name] for t in projection.tables
        }


THROTTLE = "ORD-20260302-7-00040-MESSAGE_THROTTLE"  # a check the tamper test deletes
TAMPERED_PRICE_SHA256 = "0a4061e87fffe3138e5fcc457374210e9987734e6d40beae3d701e5ad23937b5"


def test_rebuild_finds_every_row_tampered_with(
    projected: ChainStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = projected.url
    owner_sql(url, "UPDATE transactions SET price = '692.93' WHERE execution_id = "
                   "'EXE-20260302-7-00097'")  # fmt: skip
    owner_sql(url, f"DELETE FROM compliance_checks WHERE check_id = '{THROTTLE}'")
    forged = {"client_order_id": "'ORD-FORGED-1'", "stream_id": "'forged'"}
    columns = ", ".join(forged.get(name, name) for name in ORDERS.names)
    owner_sql(url, f"INSERT INTO orders SELECT {columns} FROM orders "
                   "WHERE client_order_id = 'ORD-20260302-7-00040'")  # fmt: skip

    names = ["transactions", "orders", "compliance_checks"]
    found = {p.name: rebuild(projected, p) for p in by_name(names)}
    price = (("price", "692.93", "692.92"),)
    assert [(r.position, r.difference_count, r.differences) for r in found.values()] == [
        (HEAD, 1, [Difference("transactions", ("EXE-20260302-7-00097",), "changed", price)]),
        (HEAD, 1, [Difference("orders", ("ORD-FORGED-1",), "extra")]),
        (HEAD, 1, [Difference("compliance_checks", (THROTTLE,), "missing")]),
    ]
    for name, report in found.items():
        (rebuilt,) = report.rebuilt
        assert (rebuilt.rows, rebuilt.sha256) == CHECKSUMS[rebuilt.table], name
    (live,) = found["transactions"].live
    assert (live.rows, live.sha256) == (220, TAMPERED_PRICE_SHA256)
    assert rebuild(projected, by_name(["deployments"])[0]).equal

    result = invoke(url, monkeypatch, "projections", "rebuild", "transactions")
    assert result.exit_code == 1
    assert result.output == (
        "projection: transactions, compared at position 1,809\n"
        f"  transactions: live 220 rows sha256 {TAMPERED_PRICE_SHA256[:16]}..., "
        "rebuilt 220 rows sha256 9ac6465a599f6656...: DIFFERENT\n"
        "result: DIFFERENT: 1 row(s) differ\n"
        "  transactions EXE-20260302-7-00097: price live '692.93', rebuilt '692.92'\n"
    )


def test_rebuild_compares_at_one_position_while_a_runner_advances(fresh: ChainStore) -> None:
    _run(fresh, until=999)
    progress: list[tuple[int, int]] = []

    def advance_live_view(done: int, total: int) -> None:
        if not progress:  # the live view moves on in the middle of the rebuild
            _run(fresh)
        progress.append((done, total))

    (transactions,) = by_name(["transactions"])
    report = rebuild(fresh, transactions, batch_size=400, on_progress=advance_live_view)
    assert progress == [(400, 1000), (800, 1000), (1000, 1000), (1400, 1810), (1800, 1810),
                        (1810, 1810)]  # fmt: skip
    assert (report.position, report.equal, report.live) == (HEAD, True, report.rebuilt)
    assert [(c.rows, c.sha256) for c in report.rebuilt] == [CHECKSUMS["transactions"]]


# --- 7. CLI ---------------------------------------------------------------------------------


def test_cli_status_json_after_the_demo(demo: ChainStore, monkeypatch: pytest.MonkeyPatch) -> None:
    result = invoke(demo.url, monkeypatch, "projections", "status", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"projection": name, "position": HEAD, "head": HEAD, "lag": 0} for name in NAMES
    ]


def test_cli_run_reports_the_events_it_applied(
    fresh: ChainStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def applied(events: str, rows: str) -> re.Pattern[str]:
        return re.compile(
            rf"applied {events} events \({rows} rows written\) in \d+\.\d\d s, [\d,]+ events/s; "
            r"every projection is at the head\n"
        )

    first = invoke(fresh.url, monkeypatch, "projections", "run")
    assert first.exit_code == 0, first.output
    assert applied("1,810", "1,803").fullmatch(first.output), first.output
    record_login(fresh.url, "UA-TEST-1")
    record_login(fresh.url, "UA-TEST-2")
    append_raw(fresh, "domain.weather:Forecast.Issued", uuid.uuid4(), 1)
    second = invoke(fresh.url, monkeypatch, "projections", "run")
    assert applied("3", "2").fullmatch(second.output), second.output
    third = invoke(fresh.url, monkeypatch, "projections", "run", "--only", "orders")
    assert applied("0", "0").fullmatch(third.output), third.output
    assert positions(fresh) == everywhere(HEAD + 3)


def test_cli_run_of_an_unknown_projection_is_one_line(
    demo: ChainStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = invoke(demo.url, monkeypatch, "projections", "run", "--only", "nope")
    assert result.exit_code == 2
    assert (
        result.output
        == f"Error: no projection named nope; the projections are {', '.join(NAMES)}\n"
    )
