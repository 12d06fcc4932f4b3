"""What every audit event records, and deterministic aggregate ids.

Every event says who did it (``actor``), when it happened (``occurred_at``, UTC,
microseconds), and optionally the id of the message it came from
(``source_event_id``, for idempotent ingestion); the ledger adds when it was
recorded. Aggregate ids are UUIDv5 of a natural key (an order's client order id,
a deployment's change ticket), so the same fact always lands on the same stream.
"""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from . import clock

__all__ = ["AuditAggregate", "AuditCreated", "AuditEvent", "natural_id"]

_NAMESPACE = uuid5(NAMESPACE_URL, "https://regledger.invalid/ids")


def natural_id(kind: str, key: str) -> UUID:
    """The aggregate id of ``kind`` with natural key ``key``.

    >>> natural_id("order", "C-1") == natural_id("order", "C-1")
    True
    """
    return uuid5(_NAMESPACE, f"{kind}/{key}")


class AuditEvent(Aggregate.Event):
    """An audit event: who, when it happened, and where it came from."""

    actor: str
    occurred_at: datetime
    source_event_id: str | None

    @staticmethod
    def create_timestamp() -> datetime:
        return clock.now()


class AuditCreated(Aggregate.Created):
    """The first event of an audited aggregate."""

    actor: str
    occurred_at: datetime
    source_event_id: str | None

    @staticmethod
    def create_timestamp() -> datetime:
        return clock.now()


class AuditAggregate(Aggregate):
    """An aggregate whose events are audit events (explicit, past tense, typed)."""

    class Event(AuditEvent):
        pass

    class Created(AuditCreated):
        pass
