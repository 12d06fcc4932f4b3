"""Trading views: transactions (RTS 22), orders, trade decisions, market data used,
risk calculations and pre-trade compliance checks."""

from __future__ import annotations

from domain.activity import MarketDataUsage
from domain.controls import ComplianceCheck, RiskCalculation
from domain.trading import Execution, Order, TradeDecision

from .core import Fact, Projection, Rows, copy_event, topic
from .tables import (
    COMPLIANCE_CHECKS,
    MARKET_DATA_USAGE,
    ORDERS,
    RISK_CALCULATIONS,
    TRADE_DECISIONS,
    TRANSACTIONS,
)

__all__ = [
    "COMPLIANCE_CHECKS_VIEW",
    "MARKET_DATA_VIEW",
    "ORDERS_VIEW",
    "RISK_CALCULATIONS_VIEW",
    "TRADE_DECISIONS_VIEW",
    "TRANSACTIONS_VIEW",
]

_RTS22_FIELDS = (
    "execution_id", "client_order_id", "isin", "instrument_description", "cfi",
    "notional_currency_1", "notional_currency_2", "venue", "executing_entity_lei",
    "buyer_lei", "seller_lei", "investment_decision", "execution_decision",
    "trading_capacity", "quantity", "price", "currency", "trading_time",
)  # fmt: skip


# --- transactions -------------------------------------------------------------------------


def _execution_recorded(rows: Rows, fact: Fact) -> None:
    rows.insert(
        "transactions",
        {
            **{name: fact[name] for name in _RTS22_FIELDS},
            "status": "new",
            "recorded_by": fact["actor"],
            "recorded_at": fact["occurred_at"],
            "amended_at": None,
            "cancelled_at": None,
            "correction_reason": None,
            "positions": [fact.position],
            "stream_id": fact.originator_id,
        },
    )


def _execution_amended(rows: Rows, fact: Fact) -> None:
    rows.change_stream("transactions", fact).update(
        quantity=fact["quantity"],
        price=fact["price"],
        status="amended",
        amended_at=fact["occurred_at"],
        correction_reason=fact["reason"],
    )


def _execution_cancelled(rows: Rows, fact: Fact) -> None:
    rows.change_stream("transactions", fact).update(
        status="cancelled", cancelled_at=fact["occurred_at"], correction_reason=fact["reason"]
    )


TRANSACTIONS_VIEW = Projection(
    name="transactions",
    description="one row per execution: every RTS 22 field, status and source positions",
    tables=(TRANSACTIONS,),
    handlers={
        topic(Execution.Recorded): _execution_recorded,
        topic(Execution.Amended): _execution_amended,
        topic(Execution.Cancelled): _execution_cancelled,
    },
)


# --- orders -------------------------------------------------------------------------------

_ORDER_FIELDS = (
    "client_order_id", "decision_id", "isin", "venue", "side", "quantity", "limit_price",
    "currency", "trading_capacity", "executing_entity_lei", "investment_decision",
    "execution_decision",
)  # fmt: skip


def _order_placed(rows: Rows, fact: Fact) -> None:
    rows.insert(
        "orders",
        {
            **{name: fact[name] for name in _ORDER_FIELDS},
            "status": "new",
            "placed_by": fact["actor"],
            "placed_at": fact["occurred_at"],
            "amendments": 0,
            "amended_at": None,
            "cancelled_at": None,
            "reason": None,
            "positions": [fact.position],
            "stream_id": fact.originator_id,
        },
    )


def _order_amended(rows: Rows, fact: Fact) -> None:
    row = rows.change_stream("orders", fact)
    row.update(
        quantity=fact["quantity"],
        limit_price=fact["limit_price"],
        status="amended",
        amendments=row["amendments"] + 1,
        amended_at=fact["occurred_at"],
        reason=fact["reason"],
    )


def _order_cancelled(rows: Rows, fact: Fact) -> None:
    rows.change_stream("orders", fact).update(
        status="cancelled", cancelled_at=fact["occurred_at"], reason=fact["reason"]
    )


ORDERS_VIEW = Projection(
    name="orders",
    description="one row per order: as placed, amended or cancelled, with source positions",
    tables=(ORDERS,),
    handlers={
        topic(Order.Placed): _order_placed,
        topic(Order.Amended): _order_amended,
        topic(Order.Cancelled): _order_cancelled,
    },
)


# --- insert-only views --------------------------------------------------------------------


_decision_made = copy_event(
    "trade_decisions",
    ("decision_id", "model_id", "model_version", "strategy", "isin", "signal", "confidence",
     "lineage_hash"),
    by="decided_by",
    at="decided_at",
)  # fmt: skip


TRADE_DECISIONS_VIEW = Projection(
    name="trade_decisions",
    description="one row per model decision, with the lineage hash of its inputs",
    tables=(TRADE_DECISIONS,),
    handlers={topic(TradeDecision.Made): _decision_made},
)


_market_data_used = copy_event(
    "market_data_usage",
    ("usage_id", "feed", "isin", "snapshot_hash", "snapshot_time", "purpose"),
    by="used_by",
    at="used_at",
)


MARKET_DATA_VIEW = Projection(
    name="market_data",
    description="one row per market-data snapshot used, by content hash",
    tables=(MARKET_DATA_USAGE,),
    handlers={topic(MarketDataUsage.Used): _market_data_used},
)


_risk_calculated = copy_event(
    "risk_calculations",
    ("calculation_id", "portfolio", "metric", "method", "value", "currency", "breached",
     "evidence"),
    by="calculated_by",
    at="calculated_at",
    renamed={"limit_value": "limit"},  # LIMIT is an SQL keyword
)  # fmt: skip


RISK_CALCULATIONS_VIEW = Projection(
    name="risk_calculations",
    description="one row per risk figure, its limit and whether it was breached",
    tables=(RISK_CALCULATIONS,),
    handlers={topic(RiskCalculation.Calculated): _risk_calculated},
)


_check_performed = copy_event(
    "compliance_checks",
    ("check_id", "client_order_id", "control", "passed", "observed", "threshold", "evidence"),
    by="performed_by",
    at="performed_at",
)


COMPLIANCE_CHECKS_VIEW = Projection(
    name="compliance_checks",
    description="one row per pre-trade control applied (RTS 6); failures by control and time",
    tables=(COMPLIANCE_CHECKS,),
    handlers={topic(ComplianceCheck.Performed): _check_performed},
)
