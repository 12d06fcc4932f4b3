"""What a projection is: tables, and one rule per event type of the aggregates it covers.

A projection *covers* the aggregates whose events it names. For each event type of
a covered aggregate it has a handler or an explicit reason to ignore it; an event of
a covered aggregate that it names neither way stops the runner (``UnknownEventType``)
instead of being skipped by accident. Events of aggregates it does not cover are not
its business and pass by.

Handlers are pure: they read a :class:`Fact` and insert or change rows through
:class:`Rows`, the batch's unit of work, which the runner writes with the tracking
position in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import JSONTranscoder
from eventsourcing.utils import get_topic

from domain.application import AuditTrail
from ledger.views import Row, TableSpec, ViewSession

__all__ = [
    "Fact",
    "Handler",
    "Projection",
    "ProjectionError",
    "Rows",
    "UnknownEventType",
    "aggregate_topic",
    "copy_event",
    "decoder",
    "plain",
    "topic",
]


class ProjectionError(Exception):
    """A projection cannot apply what the ledger holds; nothing of the batch was written."""


class UnknownEventType(ProjectionError):
    """An event of an aggregate a projection covers, of a type it has no rule for."""


@dataclass(frozen=True, slots=True)
class Fact:
    """One recorded event as a handler sees it: where it is in the ledger, and its fields."""

    position: int
    originator_id: str
    originator_version: int
    topic: str
    data: Mapping[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.data[name]


Handler = Callable[["Rows", Fact], None]


def topic(event_class: type[DomainEventProtocol[Any]]) -> str:
    """The ledger topic of an event class, e.g. ``domain.trading:Order.Placed``."""
    return get_topic(event_class)


def aggregate_topic(event_topic: str) -> str:
    """The aggregate part of an event topic: ``domain.trading:Order.Placed`` -> ``...:Order``."""
    return event_topic.rsplit(".", 1)[0]


def plain(value: Any) -> Any:
    """A JSON-friendly copy: decimals, times and ids as strings.

    >>> plain({"p": Decimal("1.50"), "ids": (UUID(int=1),)})
    {'p': '1.50', 'ids': ['00000000-0000-0000-0000-000000000001']}
    """
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def decoder() -> JSONTranscoder:
    """The transcoder the audit trail encodes event state with."""
    transcoder = JSONTranscoder()
    AuditTrail.register_transcodings(cast(AuditTrail, None), transcoder)
    return transcoder


@dataclass(frozen=True)
class Projection:
    """A named read model: its tables, and a rule for every event type it covers."""

    name: str
    description: str
    tables: tuple[TableSpec, ...]
    handlers: Mapping[str, Handler]
    ignores: Mapping[str, str] = field(default_factory=dict)  # topic -> why
    covers: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        both = set(self.handlers) & set(self.ignores)
        if both:
            raise ValueError(f"projection {self.name} both handles and ignores {sorted(both)}")
        covered = {aggregate_topic(t) for t in (*self.handlers, *self.ignores)}
        object.__setattr__(self, "covers", frozenset(covered))

    def rule(self, fact_topic: str, position: int) -> Handler | None:
        """The handler of ``fact_topic``; None when the projection passes it by design."""
        handler = self.handlers.get(fact_topic)
        if handler is not None or fact_topic in self.ignores:
            return handler
        if aggregate_topic(fact_topic) in self.covers:
            raise UnknownEventType(
                f"projection {self.name} has no rule for {fact_topic} (position {position}); "
                "add a handler or declare it ignored, with the reason, in projections/"
            )
        return None


def copy_event(
    table: str,
    fields: tuple[str, ...],
    *,
    by: str,
    at: str,
    renamed: Mapping[str, str] | None = None,
) -> Handler:
    """A handler that inserts one row per event: the event's ``fields`` as they are,
    ``renamed`` columns (column -> field), its actor in column ``by``, its
    ``occurred_at`` in column ``at`` and its ledger ``position``."""
    renames = dict(renamed or {})

    def handle(rows: Rows, fact: Fact) -> None:
        row = {name: fact[name] for name in fields}
        row.update({column: fact[field] for column, field in renames.items()})
        row.update({by: fact["actor"], at: fact["occurred_at"], "position": fact.position})
        rows.insert(table, row)

    return handle


class Rows:
    """The rows one batch inserts or changes, written by :meth:`flush` in order."""

    def __init__(self, session: ViewSession, tables: tuple[TableSpec, ...]) -> None:
        self._session = session
        self._tables = {t.name: t for t in tables}
        self._new: dict[str, dict[tuple[Any, ...], Row]] = {t.name: {} for t in tables}
        self._changed: dict[str, dict[tuple[Any, ...], Row]] = {t.name: {} for t in tables}

    def insert(self, table: str, row: Row) -> None:
        spec = self._tables[table]
        if row.keys() != spec.kinds.keys():
            missing, extra = set(spec.names) - set(row), set(row) - set(spec.names)
            raise ProjectionError(
                f"row for {table} lacks {sorted(missing)} / has unknown {sorted(extra)}"
            )
        key = spec.key_of(row)
        if key in self._new[table] or key in self._changed[table]:
            raise ProjectionError(f"{table} already has a row {key}")
        self._new[table][key] = row

    def _find(self, table: str, where: Mapping[str, Any]) -> tuple[tuple[Any, ...], Row, bool]:
        spec = self._tables[table]
        if tuple(where) == spec.key:
            key = tuple(where.values())
            for cache, new in ((self._new[table], True), (self._changed[table], False)):
                if key in cache:
                    return key, cache[key], new
        else:  # another unique column (a row's stream): rare, so a scan of the batch
            for cache, new in ((self._new[table], True), (self._changed[table], False)):
                for key, row in cache.items():
                    if all(row[c] == v for c, v in where.items()):
                        return key, row, new
        found = self._session.fetch(spec, where)
        if found is None:
            raise ProjectionError(f"{table} has no row where {dict(where)}")
        return spec.key_of(found), found, False

    def get(self, table: str, **where: Any) -> Row:
        """The row where columns equal ``where``, as this batch sees it, to read."""
        return self._find(table, where)[1]

    def change(self, table: str, **where: Any) -> Row:
        """The row where columns equal ``where``, to change in place."""
        key, row, new = self._find(table, where)
        if not new:
            self._changed[table][key] = row
        return row

    def change_stream(self, table: str, fact: Fact) -> Row:
        """The row of ``fact``'s aggregate, to change in place, with ``fact``'s position
        already added to its ``positions``."""
        row = self.change(table, stream_id=fact.originator_id)
        row["positions"] = [*row["positions"], fact.position]
        return row

    def flush(self) -> int:
        """Write the batch's rows; return how many were inserted or changed."""
        written = 0
        for name, spec in self._tables.items():
            new, changed = list(self._new[name].values()), list(self._changed[name].values())
            self._session.insert(spec, new)
            self._session.update(spec, changed)
            written += len(new) + len(changed)
        return written
