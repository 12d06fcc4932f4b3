"""Service level objective breaches: a burn-rate alert that fired, as a compliance fact.

The SLO processor (``streams``) evaluates the SRE workbook's multiwindow, multi-burn-rate
rules over request telemetry; when a rule starts to hold it publishes an alert and records
the breach here, with the numbers that made it fire, so an auditor can see when the
platform was out of its objectives and by how much.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from .base import AuditAggregate, AuditCreated, natural_id

__all__ = ["SLO_SEVERITIES", "SloBreach"]

SLO_SEVERITIES = frozenset({"page", "ticket"})


class SloBreach(AuditAggregate):
    """One burn-rate rule of one SLO that started to hold at ``window_end``."""

    class Recorded(AuditCreated):
        breach_id: str
        slo: str
        service: str
        severity: str
        rule: str
        long_window_minutes: int
        short_window_minutes: int
        burn_rate_long: Decimal
        burn_rate_short: Decimal
        threshold: Decimal
        sli_long: Decimal
        sli_short: Decimal
        window_end: datetime
        error_budget_remaining: Decimal

    @staticmethod
    def breach_id(slo: str, rule: str, window_end: datetime) -> str:
        """One episode's id: (SLO, rule, window end in UTC); the ledger holds it once.

        >>> from datetime import UTC
        >>> SloBreach.breach_id("api", "page-1h", datetime(2026, 3, 2, 9, tzinfo=UTC))
        'api/page-1h/2026-03-02T09:00:00+00:00'
        """
        return f"{slo}/{rule}/{window_end.astimezone(UTC).isoformat()}"

    @staticmethod
    def create_id(breach_id: str, **_: Any) -> UUID:
        return natural_id("slo-breach", breach_id)

    @event(Recorded)
    def __init__(
        self,
        *,
        breach_id: str,
        slo: str,
        service: str,
        severity: str,
        rule: str,
        long_window_minutes: int,
        short_window_minutes: int,
        burn_rate_long: Decimal,
        burn_rate_short: Decimal,
        threshold: Decimal,
        sli_long: Decimal,
        sli_short: Decimal,
        window_end: datetime,
        error_budget_remaining: Decimal,
        actor: str,
        occurred_at: datetime,
        source_event_id: str | None,
    ) -> None:
        self.slo = slo
        self.severity = severity
