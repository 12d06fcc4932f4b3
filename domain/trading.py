"""Trade decisions, orders and executions: the trail a MiFID II RTS 22 report is built from.

Nothing is edited: an amendment or a cancellation is a new event on the same stream.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from .base import AuditAggregate, AuditCreated, AuditEvent, natural_id
from .errors import InvalidTransition

__all__ = ["Execution", "Order", "TradeDecision"]


class TradeDecision(AuditAggregate):
    """A model's decision to trade, with the lineage hash of the inputs it used."""

    class Made(AuditCreated):
        decision_id: str
        model_id: str
        model_version: str
        strategy: str
        isin: str
        signal: str
        confidence: Decimal
        lineage_hash: str

    @staticmethod
    def create_id(decision_id: str, **_: Any) -> UUID:
        return natural_id("trade-decision", decision_id)

    @event(Made)
    def __init__(
        self,
        *,
        decision_id: str,
        model_id: str,
        model_version: str,
        strategy: str,
        isin: str,
        signal: str,
        confidence: Decimal,
        lineage_hash: str,
        actor: str,
        occurred_at: datetime,
        source_event_id: str | None,
    ) -> None:
        self.decision_id = decision_id
        self.model = (model_id, model_version)
        self.strategy = strategy
        self.isin = isin
        self.signal = signal
        self.confidence = confidence
        self.lineage_hash = lineage_hash


class Order(AuditAggregate):
    """An order as sent to a venue, its amendments and its cancellation."""

    class Placed(AuditCreated):
        client_order_id: str
        decision_id: str | None
        isin: str
        venue: str
        side: str
        quantity: Decimal
        limit_price: Decimal | None
        currency: str
        trading_capacity: str
        executing_entity_lei: str
        investment_decision: str
        execution_decision: str

    class Amended(AuditEvent):
        quantity: Decimal
        limit_price: Decimal | None
        reason: str

    class Cancelled(AuditEvent):
        reason: str

    @staticmethod
    def create_id(client_order_id: str, **_: Any) -> UUID:
        return natural_id("order", client_order_id)

    @event(Placed)
    def __init__(
        self,
        *,
        client_order_id: str,
        decision_id: str | None,
        isin: str,
        venue: str,
        side: str,
        quantity: Decimal,
        limit_price: Decimal | None,
        currency: str,
        trading_capacity: str,
        executing_entity_lei: str,
        investment_decision: str,
        execution_decision: str,
        actor: str,
        occurred_at: datetime,
        source_event_id: str | None,
    ) -> None:
        self.client_order_id = client_order_id
        self.decision_id = decision_id
        self.isin = isin
        self.venue = venue
        self.side = side
        self.quantity = quantity
        self.limit_price = limit_price
        self.currency = currency
        self.status = "new"

    def _require_open(self, action: str) -> None:
        if self.status == "cancelled":
            raise InvalidTransition(
                f"order {self.client_order_id} is cancelled; it cannot be {action}"
            )

    def amend(self, **kwargs: Any) -> None:
        self._require_open("amended")
        self._amend(**kwargs)

    @event(Amended)
    def _amend(
        self,
        *,
        quantity: Decimal,
        limit_price: Decimal | None,
        reason: str,
        actor: str,
        occurred_at: datetime,
        source_event_id: str | None,
    ) -> None:
        self.quantity = quantity
        self.limit_price = limit_price
        self.status = "amended"

    def cancel(self, **kwargs: Any) -> None:
        self._require_open("cancelled again")
        self._cancel(**kwargs)

    @event(Cancelled)
    def _cancel(
        self, *, reason: str, actor: str, occurred_at: datetime, source_event_id: str | None
    ) -> None:
        self.status = "cancelled"


class Execution(AuditAggregate):
    """A fill: every field an RTS 22 transaction report needs, as executed."""

    class Recorded(AuditCreated):
        execution_id: str
        client_order_id: str | None
        isin: str
        instrument_description: str | None
        cfi: str | None
        notional_currency_1: str | None
        notional_currency_2: str | None
        venue: str
        executing_entity_lei: str
        buyer_lei: str
        seller_lei: str
        investment_decision: str
        execution_decision: str
        trading_capacity: str
        quantity: Decimal
        price: Decimal
        currency: str
        trading_time: datetime

    class Amended(AuditEvent):
        quantity: Decimal
        price: Decimal
        reason: str

    class Cancelled(AuditEvent):
        reason: str

    @staticmethod
    def create_id(execution_id: str, **_: Any) -> UUID:
        return natural_id("execution", execution_id)

    @event(Recorded)
    def __init__(
        self,
        *,
        execution_id: str,
        client_order_id: str | None,
        isin: str,
        instrument_description: str | None,
        cfi: str | None,
        notional_currency_1: str | None,
        notional_currency_2: str | None,
        venue: str,
        executing_entity_lei: str,
        buyer_lei: str,
        seller_lei: str,
        investment_decision: str,
        execution_decision: str,
        trading_capacity: str,
        quantity: Decimal,
        price: Decimal,
        currency: str,
        trading_time: datetime,
        actor: str,
        occurred_at: datetime,
        source_event_id: str | None,
    ) -> None:
        self.execution_id = execution_id
        self.quantity = quantity
        self.price = price
        self.status = "new"

    def amend(self, **kwargs: Any) -> None:
        if self.status == "cancelled":
            raise InvalidTransition(
                f"execution {self.execution_id} is cancelled; it cannot be amended"
            )
        self._amend(**kwargs)

    @event(Amended)
    def _amend(
        self,
        *,
        quantity: Decimal,
        price: Decimal,
        reason: str,
        actor: str,
        occurred_at: datetime,
        source_event_id: str | None,
    ) -> None:
        self.quantity = quantity
        self.price = price
        self.status = "amended"

    def cancel(self, **kwargs: Any) -> None:
        if self.status == "cancelled":
            raise InvalidTransition(f"execution {self.execution_id} is already cancelled")
        self._cancel(**kwargs)

    @event(Cancelled)
    def _cancel(
        self, *, reason: str, actor: str, occurred_at: datetime, source_event_id: str | None
    ) -> None:
        self.status = "cancelled"
