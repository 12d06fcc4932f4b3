"""Market-data usage and user actions: what the platform read, and what people did."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from .base import AuditAggregate, AuditCreated, natural_id

__all__ = ["USER_ACTIONS", "MarketDataUsage", "UserAction"]

USER_ACTIONS = frozenset(
    {"LOGIN", "LOGOUT", "PERMISSION_CHANGE", "CONFIGURATION_CHANGE", "MANUAL_OVERRIDE"}
)


class MarketDataUsage(AuditAggregate):
    """A snapshot of a feed that a decision or a check used, by content hash."""

    class Used(AuditCreated):
        usage_id: str
        feed: str
        isin: str
        snapshot_hash: str
        snapshot_time: datetime
        purpose: str

    @staticmethod
    def create_id(usage_id: str, **_: Any) -> UUID:
        return natural_id("market-data-usage", usage_id)

    @event(Used)
    def __init__(
        self,
        *,
        usage_id: str,
        feed: str,
        isin: str,
        snapshot_hash: str,
        snapshot_time: datetime,
        purpose: str,
        actor: str,
        occurred_at: datetime,
        source_event_id: str | None,
    ) -> None:
        self.snapshot_hash = snapshot_hash


class UserAction(AuditAggregate):
    """Something a person did on the platform: log in, change a permission or a setting,
    override a control."""

    class Recorded(AuditCreated):
        action_id: str
        action: str
        target: str
        details: dict[str, str]

    @staticmethod
    def create_id(action_id: str, **_: Any) -> UUID:
        return natural_id("user-action", action_id)

    @event(Recorded)
    def __init__(
        self,
        *,
        action_id: str,
        action: str,
        target: str,
        details: dict[str, str],
        actor: str,
        occurred_at: datetime,
        source_event_id: str | None,
    ) -> None:
        self.action = action
        self.target = target
