"""ledger_sources: a source event id is recorded once, with its events, and never changed.

Also the SLO breach command of the facade (recorded by the SLO worker, keyed so that a
redelivered alert is one fact).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError
from psycopg import errors

from domain.application import AuditTrail
from domain.base import natural_id
from domain.errors import InvalidField
from domain.reliability import SloBreach
from ledger import Settings, open_store
from ledger.errors import DuplicateSourceError
from ledger.factory import application_env
from ledger.recorders import ChainedApplicationRecorder
from ledger.store import ChainStore
from ledger.verify import verify_ledger
from tests.conftest import make_events
from tests.support.databases import dsn_for


def _sources_table(url: str) -> list[tuple[str, int]]:
    """Every row of ledger_sources, read straight from the database."""
    query = "SELECT source_event_id, position FROM ledger_sources ORDER BY position"
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return [(str(s), int(p)) for s, p in conn.execute(query)]
    with psycopg.connect(url) as conn:
        return [(str(s), int(p)) for s, p in conn.execute(query)]


def test_append_records_the_position_of_each_source(url: str, store: ChainStore) -> None:
    recorder = ChainedApplicationRecorder(store)
    assert recorder.insert_events(make_events(3)) == [1, 2, 3]
    # Two messages: the first made events 0-1 of the batch, the second events 2-4.
    notification_ids = recorder.insert_events(
        make_events(5), sources=[("oms-000001", 0), ("oms-000002", 2)]
    )
    assert notification_ids == [4, 5, 6, 7, 8]
    assert _sources_table(url) == [("oms-000001", 3), ("oms-000002", 5)]
    assert store.source_positions(["oms-000002", "oms-404", "oms-000001"]) == {
        "oms-000001": 3,
        "oms-000002": 5,
    }
    assert store.source_positions([]) == {}
    assert verify_ledger(Settings(database_url=url)).checked == 8


def test_a_recorded_source_id_refuses_the_whole_batch(url: str, store: ChainStore) -> None:
    recorder = ChainedApplicationRecorder(store)
    recorder.insert_events(make_events(2), sources=[("oms-000001", 0)])
    head = store.head()

    # A redelivered message rides in a batch with a new one: neither may be stored.
    with pytest.raises(DuplicateSourceError) as caught:
        recorder.insert_events(make_events(4), sources=[("oms-000002", 0), ("oms-000001", 2)])

    assert isinstance(caught.value, IntegrityError)  # what an eventsourcing app expects
    assert caught.value.source_event_ids == ("oms-000002", "oms-000001")
    assert str(caught.value).endswith(
        ": a source event id of the batch is already recorded; nothing of the batch was stored"
    )
    assert store.head() == head
    assert store.max_position() == 1
    assert _sources_table(url) == [("oms-000001", 0)]
    assert store.source_positions(["oms-000002"]) == {}
    # The ledger is as it was: the next append carries on from position 2.
    assert recorder.insert_events(make_events(1), sources=[("oms-000002", 0)]) == [3]
    assert _sources_table(url) == [("oms-000001", 0), ("oms-000002", 2)]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_triggers_refuse_changing_or_removing_a_source(url: str, store: ChainStore) -> None:
    ChainedApplicationRecorder(store).insert_events(make_events(2), sources=[("oms-1", 0)])
    with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
        with pytest.raises(sqlite3.IntegrityError) as changed:
            conn.execute("UPDATE ledger_sources SET position = 1")
        assert str(changed.value) == (
            "ledger_sources is append-only: a source event id is never changed"
        )
        with pytest.raises(sqlite3.IntegrityError) as removed:
            conn.execute("DELETE FROM ledger_sources")
        assert str(removed.value) == (
            "ledger_sources is append-only: a source event id is never removed"
        )
    assert _sources_table(url) == [("oms-1", 0)]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_writer_role_adds_sources_but_cannot_change_or_remove_them(url: str) -> None:
    # The service connects as regledger_writer: SELECT and INSERT on ledger_sources only.
    writer_url = dsn_for(url.rsplit("/", 1)[1], user="regledger_writer")
    with open_store(Settings(database_url=writer_url)) as store:
        ChainedApplicationRecorder(store).insert_events(make_events(3), sources=[("oms-1", 1)])
        assert store.source_positions(["oms-1"]) == {"oms-1": 1}
    with psycopg.connect(writer_url, autocommit=True) as writer:
        for statement in (
            "UPDATE ledger_sources SET position = 0",
            "DELETE FROM ledger_sources",
            "TRUNCATE ledger_sources",
        ):
            with pytest.raises(errors.InsufficientPrivilege) as caught:
                writer.execute(statement)
            assert str(caught.value).startswith("permission denied for table ledger_sources")
    assert _sources_table(url) == [("oms-1", 1)]


# --- record_slo_breach ------------------------------------------------------------------

BREACH: dict[str, Any] = {
    "slo": "orders-api-availability",
    "service": "orders-api",
    "severity": "page",
    "rule": "fast-burn",
    "long_window_minutes": 60,
    "short_window_minutes": 5,
    "burn_rate_long": "15.2",
    "burn_rate_short": "16.0",
    "threshold": "14.4",
    "sli_long": "0.9848",
    "sli_short": "0.984",
    "window_end": "2026-03-02T10:00:00+01:00",
    "error_budget_remaining": "0.62",
    "actor": "slo-worker",
    "occurred_at": "2026-03-02T09:00:00.250000Z",
}


def test_record_slo_breach_records_the_numbers_that_fired(url: str, store: ChainStore) -> None:
    trail = AuditTrail(env=application_env(Settings(database_url=url)))
    try:
        breach_id = trail.record_slo_breach(**BREACH, source_event_id="slo-7")
        # One episode is one aggregate however often the alert is delivered: its id is
        # (slo, rule, window_end in UTC).
        key = "orders-api-availability/fast-burn/2026-03-02T09:00:00+00:00"
        assert breach_id == natural_id("slo-breach", key)
        (notification,) = trail.notification_log.select(start=1, limit=10)
        assert notification.topic == "domain.reliability:SloBreach.Recorded"
        event = trail.mapper.to_domain_event(notification)
        assert isinstance(event, SloBreach.Recorded)
        recorded = {name: getattr(event, name) for name in (*BREACH, "breach_id")}
        assert recorded == {
            "breach_id": key,
            "slo": "orders-api-availability",
            "service": "orders-api",
            "severity": "page",
            "rule": "fast-burn",
            "long_window_minutes": 60,
            "short_window_minutes": 5,
            "burn_rate_long": Decimal("15.2"),
            "burn_rate_short": Decimal("16.0"),
            "threshold": Decimal("14.4"),
            "sli_long": Decimal("0.9848"),
            "sli_short": Decimal("0.984"),
            "window_end": datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
            "error_budget_remaining": Decimal("0.62"),
            "actor": "slo-worker",
            "occurred_at": datetime(2026, 3, 2, 9, 0, 0, 250000, tzinfo=UTC),
        }
        assert event.source_event_id == "slo-7"
        aggregate: SloBreach = trail.repository.get(breach_id)
        assert (aggregate.slo, aggregate.severity, aggregate.version) == (
            "orders-api-availability",
            "page",
            1,
        )
    finally:
        trail.close()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"severity": "urgent"}, "severity", "severity='urgent' must be one of page, ticket"),
        (
            {"short_window_minutes": 60},
            "short_window_minutes",
            "short_window_minutes=60 must be shorter than long_window_minutes (60)",
        ),
        (
            {"short_window_minutes": 90},
            "short_window_minutes",
            "short_window_minutes=90 must be shorter than long_window_minutes (60)",
        ),
        ({"sli_long": "1.01"}, "sli_long", "sli_long='1.01' must be between 0 and 1"),
    ],
    ids=["severity", "short-equals-long", "short-above-long", "sli-above-1"],
)
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # checked before any I/O
def test_record_slo_breach_refuses_bad_fields_and_stores_nothing(
    url: str, store: ChainStore, change: dict[str, Any], field: str, message: str
) -> None:
    trail = AuditTrail(env=application_env(Settings(database_url=url)))
    try:
        with pytest.raises(InvalidField) as caught:
            trail.record_slo_breach(**{**BREACH, **change})
    finally:
        trail.close()
    assert (caught.value.field, str(caught.value)) == (field, message)
    assert store.max_position() is None
