"""Reading the ledger for people: decoded events, filters, one aggregate's history.

Each row is decoded with the audit trail's own mapper, so what is shown is what the
application reads; values become plain JSON (decimals and times as strings).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent

from domain.base import natural_id
from ledger.canonical import datetime_to_micros, micros_to_datetime
from ledger.chain import LedgerRecord
from ledger.store import ChainStore
from projections.core import plain

__all__ = ["EventView", "aggregate_id", "history", "iter_events", "plain", "view"]

_PAGE = 1_000
# Shown as columns of their own, or the library's bookkeeping, not payload.
_ENVELOPE = {"originator_id", "originator_version", "originator_topic", "timestamp"}
_COMMON = ("actor", "occurred_at", "source_event_id")


@dataclass(frozen=True)
class EventView:
    """One recorded event as an auditor reads it."""

    position: int
    recorded_at: str
    recorded_at_us: int
    aggregate_id: str
    version: int
    event_type: str
    actor: str | None
    occurred_at: str | None
    source_event_id: str | None
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    def as_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "recorded_at": self.recorded_at,
            "aggregate_id": self.aggregate_id,
            "version": self.version,
            "event_type": self.event_type,
            "actor": self.actor,
            "occurred_at": self.occurred_at,
            "source_event_id": self.source_event_id,
            "payload": self.payload,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def _iso(micros: int) -> str:
    return micros_to_datetime(micros).isoformat(timespec="microseconds").replace("+00:00", "Z")


def view(record: LedgerRecord, mapper: Mapper[UUID]) -> EventView:
    """Decode one row; an event that cannot be decoded is shown with the reason."""
    event_type = record.topic.rpartition(":")[2] or record.topic
    try:
        event = mapper.to_domain_event(
            StoredEvent(record.originator_id, record.originator_version, record.topic, record.state)
        )
        fields = {k: v for k, v in vars(event).items() if k not in _ENVELOPE}
        payload: dict[str, Any] = plain(fields)
    except Exception as exc:  # an auditor must still see the row
        payload = {"undecodable": f"{type(exc).__name__}: {exc}"}
    actor, occurred, source = (payload.get(name) for name in _COMMON)
    return EventView(
        position=record.position,
        recorded_at=_iso(record.recorded_at_us),
        recorded_at_us=record.recorded_at_us,
        aggregate_id=record.originator_id,
        version=record.originator_version,
        event_type=event_type,
        actor=actor if isinstance(actor, str) else None,
        occurred_at=occurred if isinstance(occurred, str) else None,
        source_event_id=source if isinstance(source, str) else None,
        payload={k: v for k, v in payload.items() if k not in _COMMON},
        prev_hash=record.prev_hash.hex(),
        hash=record.hash.hex(),
    )


def iter_events(
    store: ChainStore,
    mapper: Mapper[UUID],
    *,
    first: int = 0,
    last: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    event_type: str | None = None,
    aggregate: str | None = None,
    actor: str | None = None,
    limit: int | None = None,
) -> Iterator[EventView]:
    """Events in position order matching every filter given, page by page.

    ``recorded_at`` never decreases along the log, so a walk stops at ``until``.
    """
    since_us = None if since is None else datetime_to_micros(since)
    until_us = None if until is None else datetime_to_micros(until)
    shown = 0
    position = first
    while limit is None or shown < limit:
        page = store.select_records(position, last, (), _PAGE)
        if not page:
            return
        for record in page:
            if until_us is not None and record.recorded_at_us > until_us:
                return
            if since_us is not None and record.recorded_at_us < since_us:
                continue
            if aggregate is not None and record.originator_id != aggregate:
                continue
            if event_type is not None and not record.topic.endswith(
                (f":{event_type}", f".{event_type}")
            ):
                continue
            event = view(record, mapper)
            if actor is not None and event.actor != actor:
                continue
            yield event
            shown += 1
            if limit is not None and shown >= limit:
                return
        position = page[-1].position + 1


def aggregate_id(text: str) -> str:
    """An aggregate id from a UUID, or from ``KIND/KEY`` (e.g. ``order/ORD-1``).

    >>> aggregate_id("order/ORD-1") == str(natural_id("order", "ORD-1"))
    True
    """
    kind, slash, key = text.partition("/")
    if slash and kind and key:
        return str(natural_id(kind, key))
    return str(UUID(text))


def history(store: ChainStore, mapper: Mapper[UUID], aggregate: str) -> list[EventView]:
    """Every event of one aggregate, by version."""
    return [view(record, mapper) for record in store.records_of(aggregate)]
