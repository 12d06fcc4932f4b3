"""What every audit event records, and deterministic aggregate ids.

Every event says who did it (``actor``), when it happened (``occurred_at``, UTC,
microseconds), and optionally the id of the message it came from
(``source_event_id``, for idempotent ingestion); the ledger adds when it was
recorded. Aggregate ids are UUIDv5 of a natural key (an order's client order id,
a deployment's change ticket), so the same fact always lands on the same stream.
"""

from __future__ import annotations

import inspect
from datetime import datetime
from functools import cache
from typing import Any, Self
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, CanInitAggregate, _init_mentions_id
from eventsourcing.utils import get_topic, resolve_topic

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

    def mutate(self, aggregate: Any) -> Any:
        """The aggregate this event creates: eventsourcing's ``CanInitAggregate.mutate``
        (base attributes, then ``__init__`` with the event's attributes it names, then
        ``apply``), with the parameter names looked up once per class."""
        cls = resolve_topic(self.originator_topic)
        if aggregate is not None or cls in _init_mentions_id:
            return super().mutate(aggregate)
        created = cls.__new__(cls)
        created.__base_init__(self.originator_id, self.originator_version, self.timestamp)
        state = self.__dict__
        arguments = {name: state[name] for name in _init_names(cls) if name in state}
        created.__init__(**arguments)  # as eventsourcing calls it
        self.apply(created)
        return created


@cache
def _init_names(cls: type) -> tuple[str, ...]:
    """The parameters of ``cls.__init__`` (the body its ``@event`` decorates)."""
    parameters = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
    return tuple(name for name in parameters if name != "self")


class AuditAggregate(Aggregate):
    """An aggregate whose events are audit events (explicit, past tense, typed)."""

    class Event(AuditEvent):
        pass

    class Created(AuditCreated):
        pass

    @classmethod
    def _create(
        cls,
        event_class: type[CanInitAggregate[UUID]],
        *,
        id: UUID | None = None,  # noqa: A002 (eventsourcing's name)
        **kwargs: Any,
    ) -> Self:
        """A new aggregate and its created event: eventsourcing's ``BaseAggregate._create``
        (the same event, the same aggregate) without its per-call generic steps (arguments
        filtered by signature, copied, checked). Every ``create_id`` here takes the event's
        keyword arguments; tests/integration/test_demo.py holds the bytes equal."""
        if getattr(cls, "TOPIC", None):
            return super()._create(event_class, id=id, **kwargs)
        originator_id = cls.create_id(**kwargs) if id is None else id
        kwargs["originator_topic"] = get_topic(cls)
        kwargs["originator_id"] = originator_id
        kwargs["originator_version"] = cls.INITIAL_VERSION
        if kwargs.get("timestamp") is None:
            kwargs["timestamp"] = event_class.create_timestamp()
        try:
            created = event_class(**kwargs)
        except TypeError as exc:
            name = event_class.__qualname__
            raise TypeError(f"Unable to construct '{name}' event: {exc}") from exc
        aggregate = created.mutate(None)
        assert aggregate is not None
        aggregate.pending_events.append(created)
        return aggregate
