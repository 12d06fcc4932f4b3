"""Ingestion: audit messages -> the domain -> the ledger, each fact once, on both backends.

A batch is appended in one transaction when every message in it is good. A message the
domain refuses becomes one Rejection naming its field, and every good message of its
batch is still recorded, exactly as if it had come alone.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from domain.application import AuditTrail
from domain.base import natural_id
from domain.clock import use_clock
from domain.deployments import Deployment
from domain.trading import Execution, Order
from ledger import Settings, open_store
from ledger.errors import AppendTimeoutError
from ledger.factory import application_env
from ledger.sqlfiles import queries
from ledger.store import ChainStore
from streams.ingestion import FAST_REFUSALS, Ingestor, IngestResult
from streams.messages import RawMessage, Rejection
from tests.support.databases import ledger_url

LEI = "5493001KJTIIGC8Y1R12"
SAP = "DE0007164600"  # ISIN of SAP SE
WHEN = "2026-03-02T09:00:00.125000Z"
NOW = datetime(2026, 3, 2, 9, 0, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[None]:
    # Events carry their creation time: fixed, the same messages give the same bytes.
    with use_clock(lambda: NOW):
        yield


def message(
    topic: str, source_event_id: str, command: str, fields: dict[str, Any], offset: int = 0
) -> RawMessage:
    body = {"source_event_id": source_event_id, "command": command, "fields": fields}
    return RawMessage(topic, 0, offset, None, json.dumps(body).encode())


def raw(topic: str, value: bytes, offset: int = 0) -> RawMessage:
    return RawMessage(topic, 0, offset, None, value)


def order_fields(client_order_id: str, **change: Any) -> dict[str, Any]:
    return {
        "client_order_id": client_order_id,
        "decision_id": "DEC-1",
        "isin": SAP,
        "venue": "XETR",
        "side": "BUY",
        "quantity": 500,
        "limit_price": "101.00",
        "currency": "EUR",
        "trading_capacity": "DEAL",
        "executing_entity_lei": LEI,
        "investment_decision": "momentum-v2",
        "execution_decision": "algo-7",
        "actor": "oms",
        "occurred_at": WHEN,
        **change,
    }


def place_order(source_event_id: str, client_order_id: str, **change: Any) -> RawMessage:
    return message(
        "audit.trading", source_event_id, "place_order", order_fields(client_order_id, **change)
    )


def good_batch() -> list[RawMessage]:
    """A trading day in miniature: one message of every kind, on every audit topic."""
    digest = "ab" * 32
    return [
        message("audit.models", "mdl-1", "register_model_version", {
            "model_id": "momentum", "version": "2.1.0", "training_data_hash": digest,
            "parameters_hash": "cd" * 32, "description": "momentum, retrained on Q4",
            "actor": "ml.eve", "occurred_at": WHEN,
        }),
        message("audit.trading", "mkt-1", "record_market_data_usage", {
            "usage_id": "MD-1", "feed": "xetra-l2", "isin": SAP, "snapshot_hash": digest,
            "snapshot_time": "2026-03-02T08:59:59.900000Z", "purpose": "signal",
            "actor": "momentum", "occurred_at": WHEN,
        }),
        message("audit.trading", "dec-1", "make_trade_decision", {
            "decision_id": "DEC-1", "model_id": "momentum", "model_version": "2.1.0",
            "strategy": "momentum-v2", "isin": SAP, "signal": "BUY", "confidence": 0.87,
            "lineage_hash": digest, "actor": "momentum", "occurred_at": WHEN,
        }),
        message("audit.risk", "risk-1", "record_risk_calculation", {
            "calculation_id": "VAR-1", "portfolio": "eq-eu", "metric": "VAR",
            "method": "historical-99", "value": "125000.50", "limit": "200000",
            "currency": "EUR", "evidence": {"window": "250d"}, "actor": "risk-engine",
            "occurred_at": WHEN,
        }),
        message("audit.risk", "risk-2", "record_compliance_check", {
            "check_id": "CHK-1", "client_order_id": "C-1", "control": "MAX_ORDER_VALUE",
            "passed": True, "observed": "50500.00", "threshold": 1000000,
            "evidence": {"limit_source": "desk-limits"}, "actor": "pre-trade",
            "occurred_at": WHEN,
        }),
        place_order("oms-1", "C-1"),
        message("audit.trading", "oms-2", "amend_order", {
            "client_order_id": "C-1", "quantity": "300", "limit_price": 100.5,
            "reason": "client reduced size", "actor": "trader.ana", "occurred_at": WHEN,
        }),
        message("audit.trading", "oms-3", "record_execution", {
            "execution_id": "X-1", "client_order_id": "C-1", "isin": SAP, "venue": "XETR",
            "executing_entity_lei": LEI, "buyer_lei": LEI, "seller_lei": "529900T8BM49AURSDO55",
            "investment_decision": "momentum-v2", "execution_decision": "algo-7",
            "trading_capacity": "DEAL", "quantity": 300, "price": "100.48", "currency": "EUR",
            "trading_time": "2026-03-02T09:00:00.100000Z", "actor": "oms", "occurred_at": WHEN,
        }),
        message("audit.changes", "chg-1", "request_deployment", {
            "change_ticket": "CHG-1", "service": "orders-api", "version": "4.2.0",
            "commit": "9f1c2e7", "strategy": "CANARY", "actor": "dev.bob", "occurred_at": WHEN,
        }),
        message("audit.changes", "chg-2", "approve_deployment", {
            "change_ticket": "CHG-1", "actor": "lead.carol", "occurred_at": WHEN,
        }),
        message("audit.changes", "chg-3", "start_deployment", {
            "change_ticket": "CHG-1", "actor": "ops.dan", "occurred_at": WHEN,
        }),
        message("audit.activity", "act-1", "record_user_action", {
            "action_id": "ACT-1", "action": "LOGIN", "target": "console",
            "details": {"ip": "10.0.0.7"}, "actor": "trader.ana", "occurred_at": WHEN,
        }),
    ]  # fmt: skip


# (source event id, event topic, aggregate, version) of good_batch(), in order.
GOOD_EVENTS = [
    ("mdl-1", "domain.models:ModelVersion.Registered", ("model-version", "momentum@2.1.0"), 1),
    ("mkt-1", "domain.activity:MarketDataUsage.Used", ("market-data-usage", "MD-1"), 1),
    ("dec-1", "domain.trading:TradeDecision.Made", ("trade-decision", "DEC-1"), 1),
    ("risk-1", "domain.controls:RiskCalculation.Calculated", ("risk-calculation", "VAR-1"), 1),
    ("risk-2", "domain.controls:ComplianceCheck.Performed", ("compliance-check", "CHK-1"), 1),
    ("oms-1", "domain.trading:Order.Placed", ("order", "C-1"), 1),
    ("oms-2", "domain.trading:Order.Amended", ("order", "C-1"), 2),
    ("oms-3", "domain.trading:Execution.Recorded", ("execution", "X-1"), 1),
    ("chg-1", "domain.deployments:Deployment.Requested", ("deployment", "CHG-1"), 1),
    ("chg-2", "domain.deployments:Deployment.Approved", ("deployment", "CHG-1"), 2),
    ("chg-3", "domain.deployments:Deployment.Started", ("deployment", "CHG-1"), 3),
    ("act-1", "domain.activity:UserAction.Recorded", ("user-action", "ACT-1"), 1),
]
GOOD_IDS = [source for source, *_ in GOOD_EVENTS]


def recorded(url: str) -> list[tuple[int, str, UUID, int, str | None, str]]:
    """(position, topic, aggregate, version, source event id, actor) of every event, read
    back through the audit trail's notification log."""
    trail = AuditTrail(env=application_env(Settings(database_url=url)))
    try:
        rows = []
        for notification in trail.recorder.select_notifications(start=1, limit=1000):
            event: Any = trail.mapper.to_domain_event(notification)
            rows.append(
                (
                    notification.id - 1,
                    notification.topic,
                    event.originator_id,
                    event.originator_version,
                    event.source_event_id,
                    event.actor,
                )
            )
        return rows
    finally:
        trail.close()


def rows_of(store: ChainStore) -> list[tuple[str, int, str, bytes]]:
    """What each event records (not where or when the ledger put it)."""
    return [
        (r.originator_id, r.originator_version, r.topic, r.state)
        for r in store.select_records(0, None, (), 10_000)
    ]


@pytest.fixture
def ingestor(url: str) -> Iterator[Ingestor]:
    with Ingestor(Settings(database_url=url)) as opened:
        yield opened


# --- one batch, every topic ------------------------------------------------------------------


def test_a_batch_of_every_topic_is_recorded_in_one_append(
    url: str, store: ChainStore, ingestor: Ingestor
) -> None:
    result = ingestor.ingest(good_batch())

    assert result == IngestResult(messages=12, recorded=12, events=12, duplicates=0)
    actors = ["ml.eve", "momentum", "momentum", "risk-engine", "pre-trade", "oms",
              "trader.ana", "oms", "dev.bob", "lead.carol", "ops.dan", "trader.ana"]  # fmt: skip
    assert recorded(url) == [
        (position, topic, natural_id(*key), version, source, actor)
        for position, ((source, topic, key, version), actor) in enumerate(
            zip(GOOD_EVENTS, actors, strict=True)
        )
    ]
    # Each source event id points at its event; one append gives one recorded_at.
    assert store.source_positions(GOOD_IDS) == {source: i for i, source in enumerate(GOOD_IDS)}
    assert {r.recorded_at_us for r in store.select_records(0, None, (), 100)} == {
        store.head().last_recorded_at_us
    }

    # The amendment saw the order placed earlier in the same batch.
    trail = AuditTrail(env=application_env(Settings(database_url=url)))
    try:
        order: Order = trail.repository.get(natural_id("order", "C-1"))
        assert (order.version, order.status, order.quantity, order.limit_price) == (
            2,
            "amended",
            Decimal("300"),
            Decimal("100.5"),
        )
        execution: Execution = trail.repository.get(natural_id("execution", "X-1"))
        assert (execution.quantity, execution.price) == (Decimal("300"), Decimal("100.48"))
        deployment: Deployment = trail.repository.get(natural_id("deployment", "CHG-1"))
        assert (deployment.status, deployment.requester, deployment.approver) == (
            "started",
            "dev.bob",
            "lead.carol",
        )
    finally:
        trail.close()


def test_the_same_batch_again_is_all_duplicates(store: ChainStore, ingestor: Ingestor) -> None:
    ingestor.ingest(good_batch())
    head = store.head()

    # Redelivered after a crash before the offsets were committed.
    again = ingestor.ingest(good_batch())

    assert again == IngestResult(messages=12, recorded=0, events=0, duplicates=12)
    assert store.head() == head


def test_a_source_id_repeated_in_a_batch_is_recorded_once(
    url: str, store: ChainStore, ingestor: Ingestor
) -> None:
    batch = [
        place_order("oms-1", "C-1"),
        place_order("oms-2", "C-2"),
        place_order("oms-1", "C-1", quantity=999),  # a redelivery, even if it differs
        place_order("oms-2", "C-2"),
    ]
    assert ingestor.ingest(batch) == IngestResult(messages=4, recorded=2, events=2, duplicates=2)
    assert store.source_positions(["oms-1", "oms-2"]) == {"oms-1": 0, "oms-2": 1}
    trail = AuditTrail(env=application_env(Settings(database_url=url)))
    try:
        order: Order = trail.repository.get(natural_id("order", "C-1"))
        assert order.quantity == Decimal("500")  # the first one
    finally:
        trail.close()


def test_the_actor_prefix_marks_every_recorded_actor(url: str) -> None:
    with Ingestor(Settings(database_url=url), actor_prefix="kafka:") as ingestor:
        result = ingestor.ingest([place_order("oms-1", "C-1", actor=" oms ")])
    assert result.recorded == 1
    assert [row[5] for row in recorded(url)] == ["kafka:oms"]


# --- poison messages -------------------------------------------------------------------------

TRADING_COMMANDS = (
    "make_trade_decision, place_order, amend_order, cancel_order, record_execution, "
    "amend_execution, cancel_execution, record_market_data_usage"
)
ORDER_FIELDS = (
    "actor, client_order_id, currency, decision_id, executing_entity_lei, "
    "execution_decision, investment_decision, isin, limit_price, occurred_at, quantity, "
    "side, trading_capacity, venue"
)
NAN_ORDER = json.dumps(
    {"source_event_id": "oms-nan", "command": "place_order", "fields": order_fields("C-NAN")}
).replace('"quantity": 500', '"quantity": NaN')
WITHOUT_QUANTITY = {k: v for k, v in order_fields("C-9").items() if k != "quantity"}

# (message, field, error): each must give exactly this one rejection.
POISON: list[tuple[RawMessage, str, str]] = [
    (
        raw("audit.trading", b"client_order_id=C-1"),
        "message",
        "message is not JSON: Expecting value at line 1 column 1",
    ),
    (raw("audit.trading", b"[1, 2]"), "message", "message must be a JSON object, not an array"),
    (
        raw("audit.trading", b'{"command": "place_order", "fields": {}}'),
        "source_event_id",
        "source_event_id is missing: every message needs its unique id",
    ),
    (
        message("audit.trading", "oms-x1", "delete_order", {"client_order_id": "C-1"}),
        "command",
        f"command='delete_order' is not a command of audit.trading: use one of {TRADING_COMMANDS}",
    ),
    (
        message("audit.trading", "oms-x2", "record_user_action", {}),
        "command",
        "command='record_user_action' is not accepted on audit.trading; send it to audit.activity",
    ),
    (
        place_order("oms-x3", "C-3", colour="red"),
        "colour",
        f"'colour' is not a field of place_order; its fields are {ORDER_FIELDS}",
    ),
    (
        message("audit.trading", "oms-x4", "place_order", WITHOUT_QUANTITY),
        "quantity",
        "quantity is missing: place_order requires it",
    ),
    (
        place_order("oms-x5", "C-5", isin="DE0007164601"),
        "isin",
        "isin='DE0007164601' has a wrong check digit (ISO 6166: Luhn)",
    ),
    (
        raw("audit.trading", NAN_ORDER.encode()),
        "quantity",
        "quantity is NaN, which JSON does not allow: send a finite number",
    ),
    (
        message(
            "audit.trading",
            "oms-x7",
            "amend_order",
            {
                "client_order_id": "C-404",
                "quantity": 1,
                "reason": "typo",
                "actor": "trader.ana",
                "occurred_at": WHEN,
            },
        ),  # fmt: skip
        "client_order_id",
        "client_order_id='C-404' names no recorded order",
    ),
    (
        message(
            "audit.changes",
            "chg-x8",
            "approve_deployment",
            {
                "change_ticket": "CHG-2",
                "actor": "dev.bob",
                "occurred_at": WHEN,
            },
        ),  # fmt: skip
        "command",
        "dev.bob requested deployment CHG-2 and cannot approve it; another person must approve",
    ),
    (
        place_order("oms-x9", "C-1", quantity=7),  # C-1 is placed earlier, by oms-1
        "client_order_id",
        "client_order_id='C-1' is already recorded; a recorded fact is never replaced",
    ),
]
CHANGE_2 = message("audit.changes", "chg-4", "request_deployment", {
    "change_ticket": "CHG-2", "service": "risk-api", "version": "1.0.1", "commit": "77aa01c",
    "strategy": "ROLLING", "actor": "dev.bob", "occurred_at": WHEN,
})  # fmt: skip


def with_poison() -> list[RawMessage]:
    """CHG-2's request and the good batch, a poison message after each good one."""
    good = [CHANGE_2, *good_batch()]
    batch: list[RawMessage] = []
    for i, item in enumerate(good):
        batch.append(item)
        if i < len(POISON):
            batch.append(POISON[i][0])
    return batch


def test_each_poison_message_is_one_rejection_and_every_good_one_is_recorded(
    url: str, store: ChainStore, ingestor: Ingestor
) -> None:
    result = ingestor.ingest(with_poison())

    assert result.rejected == [Rejection(m, field, error) for m, field, error in POISON]
    assert (result.messages, result.recorded, result.events, result.duplicates) == (
        25,
        13,
        13,
        0,
    )
    ids = ["chg-4", *GOOD_IDS]
    assert store.source_positions([*ids, "oms-x9", "chg-x8", "oms-nan"]) == {
        source: i for i, source in enumerate(ids)
    }
    assert [row[4] for row in recorded(url)] == ids
    # Poison is never recorded: redelivered, it is refused again, and the rest are duplicates.
    again = ingestor.ingest(with_poison())
    assert again.rejected == result.rejected
    assert (again.recorded, again.duplicates) == (0, 13)


def test_a_refused_message_leaves_the_others_as_if_they_came_alone(
    url: str, store: ChainStore, ingestor: Ingestor, backend: str, tmp_path: Path
) -> None:
    promote = message("audit.changes", "chg-5", "promote_deployment", {
        "change_ticket": "CHG-1", "actor": "ops.dan", "occurred_at": WHEN,
    })  # fmt: skip
    # This rollback is refused only after the deployment took it (its evidence is checked
    # last): held in the batch, that deployment would now be rolled back, half changed.
    roll_back = message("audit.changes", "chg-x", "roll_back_deployment", {
        "change_ticket": "CHG-1", "rollback_id": "RB-1", "level": 1, "trigger": "LATENCY",
        "reason": "p99 over budget", "evidence": "see dashboard", "actor": "ops.dan",
        "occurred_at": WHEN,
    })  # fmt: skip
    batch = [*good_batch(), roll_back, promote]
    batch.insert(6, POISON[9][0])  # and an amendment of an unknown order, mid-batch
    result = ingestor.ingest(batch)
    assert [(r.message, r.field, r.error) for r in result.rejected] == [
        (POISON[9][0], "client_order_id", "client_order_id='C-404' names no recorded order"),
        (roll_back, "evidence", "evidence='see dashboard' must map strings to strings"),
    ]
    assert (result.recorded, result.events) == (13, 13)

    # The good messages record exactly what they record on their own, in one append: the
    # promotion found the deployment started, as the ledger has it.
    with ledger_url(backend, tmp_path) as clean_url:
        with Ingestor(Settings(database_url=clean_url)) as clean:
            assert clean.ingest([*good_batch(), promote]).recorded == 13
        with open_store(Settings(database_url=clean_url)) as clean_store:
            assert rows_of(store) == rows_of(clean_store)
            assert rows_of(store)[-1][1:3] == (4, "domain.deployments:Deployment.Promoted")
            assert len({r.recorded_at_us for r in clean_store.select_records(0, None, (), 99)}) == 1
    # Here too, in one append: the batch ran again without each refused message.
    assert len({r.recorded_at_us for r in store.select_records(0, None, (), 99)}) == 1


def test_a_batch_refusing_more_than_fast_refusals_goes_message_by_message(
    store: ChainStore, ingestor: Ingestor
) -> None:
    # Every other order is refused (a negative quantity): past FAST_REFUSALS reruns, the rest
    # of the batch is recorded alone. The outcome is the same; only the appends differ.
    batch = [
        place_order(f"oms-{i}", f"C-{i}", quantity="-1" if i % 2 else "500") for i in range(24)
    ]
    result = ingestor.ingest(batch)
    assert [(r.message, r.field, r.error) for r in result.rejected] == [
        (batch[i], "quantity", "quantity='-1' must be greater than 0") for i in range(1, 24, 2)
    ]
    assert (result.recorded, result.events, result.duplicates) == (12, 12, 0)
    assert FAST_REFUSALS == 8
    positions = store.source_positions([f"oms-{i}" for i in range(24)])
    assert sorted(positions.values()) == list(range(12))
    assert sorted(positions) == sorted(f"oms-{i}" for i in range(0, 24, 2))
    # A refused batch records nothing: after the ninth refusal (C-17) each of the 12 good
    # orders went in alone, one append each.
    appends = {r.recorded_at_us for r in store.select_records(0, None, (), 99)}
    assert len(appends) == 12


def test_a_batch_with_fast_refusals_refused_messages_is_one_append(
    store: ChainStore, ingestor: Ingestor
) -> None:
    batch = [
        place_order(f"oms-{i}", f"C-{i}", quantity="-1" if i % 2 else "500")
        for i in range(2 * FAST_REFUSALS)
    ]
    result = ingestor.ingest(batch)
    assert [r.message for r in result.rejected] == batch[1::2]
    assert (result.recorded, result.events) == (FAST_REFUSALS, FAST_REFUSALS)
    appends = {r.recorded_at_us for r in store.select_records(0, None, (), 99)}
    assert len(appends) == 1


def test_a_fact_recorded_in_an_earlier_batch_is_refused_by_its_key(
    store: ChainStore, ingestor: Ingestor
) -> None:
    ingestor.ingest([place_order("oms-1", "C-1")])
    # The same order under a new source id: the append of the batch fails, then each
    # message is recorded alone and only the repeated order is refused.
    batch = [place_order("oms-2", "C-2"), place_order("oms-3", "C-1"), place_order("oms-4", "C-4")]
    result = ingestor.ingest(batch)
    assert result == IngestResult(
        messages=3,
        recorded=2,
        events=2,
        duplicates=0,
        rejected=[
            Rejection(
                batch[1],
                "client_order_id",
                "client_order_id='C-1' is already recorded; a recorded fact is never replaced",
            )
        ],
    )
    assert store.source_positions(["oms-2", "oms-3", "oms-4"]) == {"oms-2": 1, "oms-4": 2}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_events_too_large_for_the_ledger_are_a_rejection(url: str, store: ChainStore) -> None:
    big = message("audit.activity", "act-9", "record_user_action", {
        "action_id": "ACT-9", "action": "CONFIGURATION_CHANGE", "target": "limits",
        "details": {"diff": "x" * 5000}, "actor": "ops.dan", "occurred_at": WHEN,
    })  # fmt: skip
    with Ingestor(Settings(database_url=url, max_event_bytes=4096)) as ingestor:
        result = ingestor.ingest([place_order("oms-1", "C-1"), big])
    assert (result.recorded, result.events) == (1, 1)
    (rejection,) = result.rejected
    assert rejection.field == "message"
    assert re.fullmatch(
        r"the ledger refuses the events of record_user_action: event 0 of the batch: "
        r"state='<5,\d{3} bytes>' exceeds REGLEDGER_MAX_EVENT_BYTES=4,096; nothing of the "
        r"batch was stored",
        rejection.error,
    ), rejection.error
    assert store.source_positions(["oms-1", "act-9"]) == {"oms-1": 0}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_time_past_the_year_9999_in_utc_is_refused_by_name(
    url: str, store: ChainStore, ingestor: Ingestor
) -> None:
    # 9999-12-31T23:59:59-05:00 is past the year 9999 in UTC: the domain names the field.
    poison = place_order("oms-2", "C-2", occurred_at="9999-12-31T23:59:59-05:00")
    result = ingestor.ingest([place_order("oms-1", "C-1"), poison])
    assert result.rejected == [
        Rejection(
            poison,
            "occurred_at",
            "occurred_at='9999-12-31T23:59:59-05:00' is out of range once converted to UTC",
        )  # fmt: skip
    ]
    assert store.source_positions(["oms-1", "oms-2"]) == {"oms-1": 0}


# --- the database failing --------------------------------------------------------------------


def test_a_ledger_that_cannot_be_written_fails_the_batch(
    url: str, store: ChainStore, backend: str
) -> None:
    # Another writer holds the append lock: ingest raises, so the worker acks nothing.
    if backend == "postgres":
        holder: psycopg.Connection[tuple[object, ...]] | sqlite3.Connection = psycopg.connect(url)
        holder.execute(queries("postgres")["append_lock"])
    else:
        holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    with Ingestor(Settings(database_url=url, lock_timeout_s=0.2)) as ingestor:
        try:
            with pytest.raises(AppendTimeoutError):
                ingestor.ingest(good_batch())
        finally:
            holder.rollback()
            holder.close()
        assert store.max_position() is None
        # Redelivered once the lock is free, the batch goes in whole.
        assert ingestor.ingest(good_batch()).recorded == 12
