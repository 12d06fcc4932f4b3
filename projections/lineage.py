"""Lineage: a trade from the model's decision to its executions, with ledger positions.

Given a decision id, a client order id or an execution id, :func:`lineage` finds the
decision and walks it through the projections:

1. the trade decision;
2. the market-data snapshots it used (``snapshot_hash`` = the decision's ``lineage_hash``);
3. the risk figures in force: the latest of each portfolio and metric recorded before
   the first order (before the decision when it led to no order);
4. the pre-trade compliance checks of its orders;
5. the orders placed on it (an order placed without a decision starts the walk there);
6. the executions of those orders (an execution with no order on record, such as an
   OTC trade, is its own lineage).

Every step carries the ledger positions of the events it came from, so each can be
proved with ``regledger prove POSITION``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.sqlfiles import queries
from ledger.views import Row, TableSpec, ViewSession

from .core import ProjectionError
from .tables import (
    COMPLIANCE_CHECKS,
    MARKET_DATA_USAGE,
    ORDERS,
    RISK_CALCULATIONS,
    TRADE_DECISIONS,
    TRANSACTIONS,
)

__all__ = ["STAGES", "Lineage", "Step", "lineage", "failed_checks"]

STAGES = ("decision", "market data", "risk", "compliance check", "order", "execution")


@dataclass(frozen=True)
class Step:
    stage: str  # one of STAGES
    id: str
    at: datetime  # when it happened (occurred_at; an execution's trading time)
    positions: tuple[int, ...]
    summary: str
    row: Row

    @property
    def position(self) -> int:
        return self.positions[0]


@dataclass(frozen=True)
class Lineage:
    requested: str
    steps: tuple[Step, ...]  # by stage, then by position

    def of(self, stage: str) -> list[Step]:
        return [s for s in self.steps if s.stage == stage]


class _Reader:
    def __init__(self, session: ViewSession) -> None:
        self.session = session
        self.sql = queries(session.backend, "projections")

    def rows(self, table: TableSpec, query: str, **params: Any) -> list[Row]:
        return self.session.query(table, self.sql[query], params)


def _positions(row: Row) -> tuple[int, ...]:
    return tuple(row["positions"]) if "positions" in row else (row["position"],)


def _decision(row: Row) -> Step:
    return Step(
        "decision",
        row["decision_id"],
        row["decided_at"],
        _positions(row),
        f"{row['model_id']} v{row['model_version']}: {row['signal']} {row['isin']} "
        f"(confidence {row['confidence']})",
        row,
    )


def _market_data(row: Row) -> Step:
    return Step(
        "market data",
        row["usage_id"],
        row["used_at"],
        _positions(row),
        f"{row['feed']} {row['isin']} snapshot of {row['snapshot_time'].isoformat()}",
        row,
    )


def _risk(row: Row) -> Step:
    verdict = "BREACHED" if row["breached"] else "within limit"
    return Step(
        "risk",
        row["calculation_id"],
        row["calculated_at"],
        _positions(row),
        f"{row['portfolio']} {row['metric']} {row['value']} {row['currency']} "
        f"(limit {row['limit_value']}): {verdict}",
        row,
    )


def _check(row: Row) -> Step:
    verdict = "passed" if row["passed"] else "FAILED"
    return Step(
        "compliance check",
        row["check_id"],
        row["performed_at"],
        _positions(row),
        f"{row['control']} observed {row['observed']} vs {row['threshold']}: {verdict}",
        row,
    )


def _order(row: Row) -> Step:
    price = "market" if row["limit_price"] is None else f"limit {row['limit_price']}"
    return Step(
        "order",
        row["client_order_id"],
        row["placed_at"],
        _positions(row),
        f"{row['side']} {row['quantity']} {row['isin']} on {row['venue']}, {price} "
        f"{row['currency']} ({row['status']})",
        row,
    )


def _execution(row: Row) -> Step:
    return Step(
        "execution",
        row["execution_id"],
        row["trading_time"],
        _positions(row),
        f"{row['quantity']} @ {row['price']} {row['currency']} on {row['venue']} ({row['status']})",
        row,
    )


def lineage(session: ViewSession, identifier: str) -> Lineage:
    """The lineage of the trade ``identifier`` names (decision, order or execution id)."""
    read = _Reader(session)
    decisions = read.rows(TRADE_DECISIONS, "decision", id=identifier)
    orders: list[Row] = []
    executions: list[Row] = []  # an execution asked for by id
    if not decisions:
        orders = read.rows(ORDERS, "order", id=identifier)
        if not orders:
            executions = read.rows(TRANSACTIONS, "execution", id=identifier)
            if not executions:
                raise ProjectionError(
                    f"no decision, order or execution has the id {identifier!r} in the "
                    "projections; check the id, or run `regledger projections run`"
                )
            if executions[0]["client_order_id"] is not None:
                orders = read.rows(ORDERS, "order", id=executions[0]["client_order_id"])
        if orders and orders[0]["decision_id"] is not None:
            decisions = read.rows(TRADE_DECISIONS, "decision", id=orders[0]["decision_id"])
    if decisions:
        orders = read.rows(ORDERS, "orders_of_decision", id=decisions[0]["decision_id"])
    order_ids = [o["client_order_id"] for o in orders]
    steps = [_decision(d) for d in decisions]
    for decision in decisions:
        steps += map(_market_data, read.rows(MARKET_DATA_USAGE, "market_data_of_hash",
                                              hash=decision["lineage_hash"]))  # fmt: skip
    anchors = [min(_positions(o)) for o in orders] or [d["position"] for d in decisions]
    if anchors:
        steps += map(_risk, read.rows(RISK_CALCULATIONS, "risk_in_force", before=min(anchors)))
    if order_ids:
        steps += map(_check, read.rows(COMPLIANCE_CHECKS, "checks_of_orders", ids=order_ids))
        steps += map(_order, orders)
        steps += map(_execution, read.rows(TRANSACTIONS, "executions_of_orders", ids=order_ids))
    else:  # an execution with no order on record (an OTC trade): it is its own lineage
        steps += map(_execution, executions)
    steps.sort(key=lambda s: (STAGES.index(s.stage), s.position))
    return Lineage(identifier, tuple(steps))


def failed_checks(
    session: ViewSession,
    *,
    control: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Row]:
    """Pre-trade checks that failed, optionally of one control, in ``[since, until)``."""
    return _Reader(session).rows(
        COMPLIANCE_CHECKS, "failed_checks", control=control, since=since, until=until
    )
