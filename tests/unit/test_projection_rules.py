"""Pure rules of the projections: which events each applies, skips or refuses; the
unit of work; the canonical rows a rebuild compares."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

import domain
import domain.activity
import domain.controls
import domain.deployments
import domain.models
import domain.trading
from domain.base import AuditCreated, AuditEvent
from ledger.views import Row, TableSpec, ViewSession
from projections.catalogue import PROJECTIONS, by_name
from projections.core import Fact, ProjectionError, Rows, UnknownEventType, topic
from projections.governance import DORA_VIEW, seconds_between
from projections.rebuild import canonical_line
from projections.tables import DEPLOYMENTS, ORDERS, TRANSACTIONS
from projections.trading import ORDERS_VIEW, TRANSACTIONS_VIEW


def _event_classes() -> list[type]:
    """Every event type the domain records. ``Event`` and ``Created``, which eventsourcing
    defines on each aggregate, are only the bases of the recorded ones."""
    found = []
    names = [m.name for m in pkgutil.iter_modules(domain.__path__)]
    modules = [importlib.import_module(f"domain.{name}") for name in names]
    assert {m.__name__ for m in modules} >= {"domain.trading", "domain.reliability"}
    for module in modules:
        for _, aggregate in inspect.getmembers(module, inspect.isclass):
            if aggregate.__module__ != module.__name__:
                continue
            for name, member in vars(aggregate).items():
                if (
                    isinstance(member, type)
                    and issubclass(member, AuditEvent | AuditCreated)
                    and name not in ("Event", "Created")
                ):
                    found.append(member)
    return found


def test_every_domain_event_type_is_applied_by_some_projection() -> None:
    handled = {t for p in PROJECTIONS for t in p.handlers}
    topics = {topic(cls) for cls in _event_classes()}
    assert len(topics) == 21
    assert topics - handled == set()


def test_a_projection_has_a_rule_for_every_event_type_of_the_aggregates_it_covers() -> None:
    topics = {topic(cls) for cls in _event_classes()}
    for projection in PROJECTIONS:
        for event_topic in topics:
            if event_topic.rsplit(".", 1)[0] in projection.covers:
                assert event_topic in projection.handlers or event_topic in projection.ignores, (
                    projection.name,
                    event_topic,
                )


def test_events_of_aggregates_a_view_does_not_cover_pass_it_by_design() -> None:
    # The transactions view covers executions only: an order is not its business.
    assert TRANSACTIONS_VIEW.covers == frozenset({"domain.trading:Execution"})
    assert TRANSACTIONS_VIEW.rule(topic(domain.trading.Order.Placed), 7) is None


def test_ignored_event_types_are_declared_with_the_reason() -> None:
    promoted = topic(domain.deployments.Deployment.Promoted)
    assert DORA_VIEW.rule(promoted, 3) is None
    assert DORA_VIEW.ignores[promoted].startswith("a change counts when it starts")


def test_an_unknown_event_type_of_a_covered_aggregate_stops_the_projection() -> None:
    with pytest.raises(UnknownEventType) as caught:
        ORDERS_VIEW.rule("domain.trading:Order.Disputed", 42)
    assert str(caught.value) == (
        "projection orders has no rule for domain.trading:Order.Disputed (position 42); "
        "add a handler or declare it ignored, with the reason, in projections/"
    )


def test_projection_names_are_checked() -> None:
    assert [p.name for p in by_name(["rollbacks", "orders"])] == ["orders", "rollbacks"]
    with pytest.raises(ProjectionError, match="no projection named trades; the projections"):
        by_name(["trades"])


class _Session(ViewSession):
    """A view session over dicts: enough for the unit of work."""

    backend = "memory"

    def __init__(self, rows: dict[str, list[Row]]) -> None:
        self.rows = rows
        self.inserted: dict[str, list[Row]] = {}
        self.updated: dict[str, list[Row]] = {}

    def transaction(self, *, snapshot: bool = False) -> AbstractContextManager[None]:
        return nullcontext()

    def fetch(self, table: TableSpec, where: Mapping[str, Any]) -> Row | None:
        found = [
            r for r in self.rows.get(table.name, []) if all(r[k] == v for k, v in where.items())
        ]
        return dict(found[0]) if found else None

    def insert(self, table: TableSpec, rows: Sequence[Row]) -> None:
        self.inserted[table.name] = list(rows)

    def update(self, table: TableSpec, rows: Sequence[Row]) -> None:
        self.updated[table.name] = list(rows)

    def _tracking(self, query: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        raise NotImplementedError

    def scan(self, table: TableSpec, *, scratch: bool = False) -> Iterator[Row]:
        raise NotImplementedError

    def use_scratch(self, tables: Sequence[TableSpec]) -> None:
        raise NotImplementedError

    def clear(self, tables: Sequence[TableSpec]) -> None:
        raise NotImplementedError

    def query(self, table: TableSpec, sql: str, params: Mapping[str, Any]) -> list[Row]:
        raise NotImplementedError

    def close(self) -> None:
        pass


T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _order(client_order_id: str, stream: str, position: int) -> Row:
    row: Row = dict.fromkeys(ORDERS.names)
    row.update(client_order_id=client_order_id, stream_id=stream, status="new", amendments=0,
               quantity=Decimal(100), positions=[position])  # fmt: skip
    return row


def test_rows_changes_a_stored_row_found_by_its_stream_and_writes_it_once() -> None:
    session = _Session({"orders": [_order("ORD-1", "s-1", 5)]})
    rows = Rows(session, (ORDERS,))
    amend = ORDERS_VIEW.handlers[topic(domain.trading.Order.Amended)]
    cancel = ORDERS_VIEW.handlers[topic(domain.trading.Order.Cancelled)]
    amended = {"quantity": Decimal(50), "limit_price": Decimal("10.10"), "reason": "half",
               "occurred_at": T0, "actor": "t"}  # fmt: skip
    amend(rows, Fact(9, "s-1", 2, "x", amended))
    cancel(rows, Fact(11, "s-1", 3, "x", {"reason": "done", "occurred_at": T0, "actor": "t"}))
    assert rows.flush() == 1
    assert session.inserted == {"orders": []}
    (row,) = session.updated["orders"]
    assert (row["status"], row["amendments"], row["quantity"], row["positions"]) == (
        "cancelled", 1, Decimal(50), [5, 9, 11],
    )  # fmt: skip


def test_rows_changes_a_row_inserted_in_the_same_batch_without_a_lookup() -> None:
    session = _Session({})
    rows = Rows(session, (ORDERS,))
    rows.insert("orders", _order("ORD-2", "s-2", 1))
    rows.change("orders", stream_id="s-2")["status"] = "amended"
    assert rows.flush() == 1
    assert [r["status"] for r in session.inserted["orders"]] == ["amended"]
    assert session.updated == {"orders": []}


def test_rows_refuses_a_change_to_a_row_that_does_not_exist() -> None:
    rows = Rows(_Session({}), (ORDERS,))
    with pytest.raises(ProjectionError, match=r"orders has no row where \{'stream_id': 's-9'\}"):
        rows.change("orders", stream_id="s-9")


def test_rows_refuses_a_row_with_missing_or_unknown_columns() -> None:
    rows = Rows(_Session({}), (ORDERS,))
    row = _order("ORD-3", "s-3", 1)
    del row["venue"]
    row["colour"] = "red"
    with pytest.raises(ProjectionError, match=r"lacks \['venue'\] / has unknown \['colour'\]"):
        rows.insert("orders", row)


def test_seconds_between_is_exact_to_the_microsecond() -> None:
    assert seconds_between(T0, T0 + timedelta(minutes=45, microseconds=7)) == Decimal("2700.000007")
    assert str(seconds_between(T0, T0 + timedelta(hours=1))) == "3600.000000"


def test_canonical_lines_are_the_same_whatever_the_backend_returned() -> None:
    base: Row = dict.fromkeys(DEPLOYMENTS.names)
    base.update(
        change_ticket="CHG-1",
        emergency=True,
        rollback_level=1,
        positions=[3, 9],
        sod_violations=[],
        requested_at=datetime(2026, 3, 2, 8, 30, tzinfo=UTC),
    )
    berlin = timezone(timedelta(hours=1))
    other = {**base, "requested_at": datetime(2026, 3, 2, 9, 30, tzinfo=berlin)}
    assert canonical_line(DEPLOYMENTS, base) == canonical_line(DEPLOYMENTS, other)
    assert canonical_line(DEPLOYMENTS, base).startswith(
        '["CHG-1",null,null,null,null,true,null,"2026-03-02T08:30:00.000000+00:00",'
    )
    row: Row = dict.fromkeys(TRANSACTIONS.names)
    for written, shown in ((Decimal("13.30"), '"13.30"'), (Decimal("1E+6"), '"1000000"')):
        row["price"] = written
        assert canonical_line(TRANSACTIONS, row).split(",")[15] == shown
