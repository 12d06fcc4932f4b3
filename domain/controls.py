"""Risk calculations and pre-trade compliance checks (RTS 6 controls), with their evidence."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from .base import AuditAggregate, AuditCreated, natural_id

__all__ = ["RISK_METRICS", "RTS6_CONTROLS", "ComplianceCheck", "RiskCalculation"]

RISK_METRICS = frozenset(
    {"VAR", "EXPECTED_SHORTFALL", "GROSS_EXPOSURE", "NET_EXPOSURE", "POSITION"}
)
# RTS 6 Article 15 pre-trade controls, and the kill switch of Article 12.
RTS6_CONTROLS = frozenset(
    {"PRICE_COLLAR", "MAX_ORDER_VALUE", "MAX_ORDER_VOLUME", "MESSAGE_THROTTLE", "KILL_SWITCH"}
)


class RiskCalculation(AuditAggregate):
    """A risk figure, the limit it was held against, and the verdict."""

    class Calculated(AuditCreated):
        calculation_id: str
        portfolio: str
        metric: str
        method: str
        value: Decimal
        limit: Decimal
        currency: str
        breached: bool
        evidence: dict[str, str]

    @staticmethod
    def create_id(calculation_id: str, **_: Any) -> UUID:
        return natural_id("risk-calculation", calculation_id)

    @event(Calculated)
    def __init__(
        self,
        *,
        calculation_id: str,
        portfolio: str,
        metric: str,
        method: str,
        value: Decimal,
        limit: Decimal,
        currency: str,
        breached: bool,
        evidence: dict[str, str],
        actor: str,
        occurred_at: datetime,
        source_event_id: str | None,
    ) -> None:
        self.metric = metric
        self.value = value
        self.limit = limit
        self.breached = breached


class ComplianceCheck(AuditAggregate):
    """One pre-trade control applied to one order: passed or failed, with what it saw."""

    class Performed(AuditCreated):
        check_id: str
        client_order_id: str
        control: str
        passed: bool
        observed: Decimal
        threshold: Decimal
        evidence: dict[str, str]

    @staticmethod
    def create_id(check_id: str, **_: Any) -> UUID:
        return natural_id("compliance-check", check_id)

    @event(Performed)
    def __init__(
        self,
        *,
        check_id: str,
        client_order_id: str,
        control: str,
        passed: bool,
        observed: Decimal,
        threshold: Decimal,
        evidence: dict[str, str],
        actor: str,
        occurred_at: datetime,
        source_event_id: str | None,
    ) -> None:
        self.control = control
        self.passed = passed
