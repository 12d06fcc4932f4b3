"""Which deployments the guard watches and how telemetry reaches them (streams/guard_book.py).

Pure: ledger events and telemetry messages go in as the worker decodes them; exact
triggers, routing counts and errors come out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.errors import InvalidField
from streams.guard_book import DEPLOYMENT_TOPICS, UNKNOWN_BASELINE, GuardBook

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REQUESTED, STARTED, PROMOTED, ROLLED_BACK = DEPLOYMENT_TOPICS


def _deploy(book: GuardBook, position: int, ticket: str, version: str, strategy: str) -> int:
    """Request and start ``ticket`` at ``position`` and the next; return the next free one."""
    requested = {"change_ticket": ticket, "service": "trading-api", "version": version,
                 "strategy": strategy}  # fmt: skip
    book.apply(position, REQUESTED, f"id-{ticket}", requested)
    book.apply(position + 1, STARTED, f"id-{ticket}", {"occurred_at": T0.isoformat()})
    return position + 2


def _request(version: str, second: int, status: int = 200, latency: str = "40") -> dict[str, Any]:
    return {
        "service": "trading-api", "endpoint": "/orders", "latency_ms": Decimal(latency),
        "status": status, "time": (T0 + timedelta(seconds=second)).isoformat(),
        "version": version,
    }  # fmt: skip


def test_a_started_canary_is_watched_against_the_version_last_promoted() -> None:
    book = GuardBook()
    nxt = _deploy(book, 0, "CHG-1", "4.1.0", "ROLLING")
    book.apply(nxt, PROMOTED, "id-CHG-1", {})
    assert book.guards == {}  # a rolling change is not watched
    _deploy(book, nxt + 1, "CHG-2", "4.2.0", "CANARY")
    watched = book.guards["CHG-2"].deployment
    assert (watched.baseline_version, watched.candidate_version, watched.started_at) == (
        "4.1.0", "4.2.0", T0,
    )  # fmt: skip
    assert book.position == nxt + 2


def test_without_a_promotion_the_baseline_is_unknown_and_redelivery_is_ignored() -> None:
    book = GuardBook()
    _deploy(book, 0, "CHG-2", "4.2.0", "SHADOW")
    assert book.guards["CHG-2"].deployment.baseline_version == UNKNOWN_BASELINE
    book.apply(1, ROLLED_BACK, "id-CHG-2", {})  # position 1 again: a redelivery
    assert list(book.guards) == ["CHG-2"]
    book.apply(2, ROLLED_BACK, "id-CHG-2", {})
    assert book.guards == {}


def test_candidate_errors_trigger_one_rollback_at_the_newest_telemetry_time() -> None:
    book = GuardBook()
    _deploy(book, 0, "CHG-2", "4.2.0", "CANARY")
    for i in range(100):
        assert book.observe("telemetry.requests", _request("4.1.0", i * 3)) == 1
        status = 503 if i < 5 else 200
        assert book.observe("telemetry.requests", _request("4.2.0", i * 3, status)) == 1
    book.observe("telemetry.requests", _request("4.1.0", 300))  # opens the next window
    [trigger] = book.evaluate()
    assert (trigger.kind, trigger.reason, trigger.occurred_at) == (
        "ERROR_RATE",
        "canary error rate 5 % over 100 requests (threshold 1 %)",
        T0 + timedelta(seconds=300),
    )
    assert book.evaluate() == []  # exactly once


def test_a_manual_stop_reaches_only_its_deployment() -> None:
    book = GuardBook()
    _deploy(book, 0, "CHG-2", "4.2.0", "BLUE_GREEN")
    stop = {"change_ticket": "CHG-9", "actor": "ops", "reason": "halt", "time": T0.isoformat()}
    assert book.observe("deployments.stop", stop) == 0
    assert book.observe("deployments.stop", {**stop, "change_ticket": "CHG-2"}) == 1
    [trigger] = book.evaluate(T0 + timedelta(seconds=10))
    assert trigger.kind == "MANUAL"


def test_messages_of_other_services_or_without_a_version_are_not_routed() -> None:
    book = GuardBook()
    _deploy(book, 0, "CHG-2", "4.2.0", "CANARY")
    other = {**_request("1.0", 1), "service": "risk-engine"}
    assert book.observe("telemetry.requests", other) == 0
    unversioned = _request("4.2.0", 1)
    del unversioned["version"]
    assert book.observe("telemetry.requests", unversioned) == 0


@pytest.mark.parametrize(
    ("topic", "message", "field", "text"),
    [
        ("telemetry.requests", ["not", "an", "object"], "message",
         "message=['not', 'an', 'object'] must be a JSON object"),
        ("telemetry.requests", {**_request("4.2.0", 1), "latency_ms": -1}, "latency_ms",
         "latency_ms=-1 must be >= 0"),
        ("telemetry.requests", {**_request("4.2.0", 1), "time": "09:00"}, "time",
         "time='09:00' is not an ISO 8601 timestamp"),
        ("model.outcomes", {"service": "trading-api", "version": "4.2.0", "correct": "yes",
                            "time": T0.isoformat()},
         "correct", "correct='yes' must be true or false"),
        ("telemetry.resources", {"service": "trading-api", "version": "4.2.0", "cpu_pct": 120,
                                 "memory_pct": 10, "time": T0.isoformat()}, "cpu_pct",
         "cpu_pct=Decimal('120') must be between 0 and 100"),
        ("telemetry.resources", {"service": "trading-api", "version": "4.2.0", "cpu_pct": "sNaN",
                                 "memory_pct": 10, "time": T0.isoformat()}, "cpu_pct",
         "cpu_pct='sNaN' must be a finite number"),
        ("telemetry.resources", {"service": "trading-api", "version": "4.2.0", "cpu_pct": 1,
                                 "memory_pct": "-Infinity", "time": T0.isoformat()},
         "memory_pct", "memory_pct='-Infinity' must be a finite number"),
        ("deployments.stop", {"change_ticket": "CHG-2", "actor": " ", "reason": "x",
                              "time": T0.isoformat()},
         "actor", "actor=' ' must be a non-empty string"),
    ],
)  # fmt: skip
def test_a_malformed_message_names_its_field(
    topic: str, message: object, field: str, text: str
) -> None:
    book = GuardBook()
    _deploy(book, 0, "CHG-2", "4.2.0", "CANARY")
    with pytest.raises(InvalidField) as caught:
        book.observe(topic, message)
    assert (caught.value.field, str(caught.value)) == (field, text)
