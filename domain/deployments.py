"""Deployments and rollbacks: change management a SOX auditor can follow.

Lifecycle: requested -> approved -> started -> promoted | rolled back. A change may
not start unapproved, and its approver must not be its requester. An emergency
change may start before approval; it must then be approved retroactively, by
someone else, within 24 hours: until then the pending approval is visible
(``retroactive_approval_due``), and a late one is recorded as late.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from .base import AuditAggregate, AuditCreated, AuditEvent, natural_id
from .errors import ApprovalRequired, InvalidTransition, SeparationOfDutiesViolated

__all__ = [
    "RETROACTIVE_APPROVAL_WINDOW",
    "ROLLBACK_LEVELS",
    "ROLLBACK_TRIGGERS",
    "STRATEGIES",
    "Deployment",
    "Rollback",
]

STRATEGIES = frozenset({"ROLLING", "CANARY", "BLUE_GREEN", "SHADOW"})
ROLLBACK_LEVELS = {1: "service", 2: "feature", 3: "system", 4: "emergency"}
ROLLBACK_TRIGGERS = frozenset({"LATENCY", "ACCURACY", "ERROR_RATE", "RESOURCE", "MANUAL"})
RETROACTIVE_APPROVAL_WINDOW = timedelta(hours=24)


class Deployment(AuditAggregate):
    """One change to one service, identified by its change ticket."""

    class Requested(AuditCreated):
        change_ticket: str
        service: str
        version: str
        commit: str
        strategy: str
        emergency: bool

    class Approved(AuditEvent):
        pass

    class RetroactivelyApproved(AuditEvent):
        due: datetime
        late: bool

    class Started(AuditEvent):
        approved: bool

    class Promoted(AuditEvent):
        pass

    class RolledBack(AuditEvent):
        rollback_id: str
        level: int
        trigger: str

    @staticmethod
    def create_id(change_ticket: str, **_: Any) -> UUID:
        return natural_id("deployment", change_ticket)

    @event(Requested)
    def __init__(
        self,
        *,
        change_ticket: str,
        service: str,
        version: str,
        commit: str,
        strategy: str,
        emergency: bool,
        actor: str,
        occurred_at: datetime,
        source_event_id: str | None,
    ) -> None:
        self.change_ticket = change_ticket
        self.service = service
        self.release = version  # not "version": that is the aggregate's own counter
        self.strategy = strategy
        self.emergency = emergency
        self.requester = actor
        self.approver: str | None = None
        self.status = "requested"
        self.retroactive_approval_due: datetime | None = None

    # --- commands (rules first, then the event) ------------------------------------

    def approve(self, *, actor: str, occurred_at: datetime, source_event_id: str | None) -> None:
        if self.approver is not None:
            raise InvalidTransition(
                f"deployment {self.change_ticket} was already approved by {self.approver}"
            )
        if actor == self.requester:
            raise SeparationOfDutiesViolated(
                f"{actor} requested deployment {self.change_ticket} and cannot approve it; "
                "another person must approve"
            )
        if self.status == "requested":
            self._approve(actor=actor, occurred_at=occurred_at, source_event_id=source_event_id)
            return
        if not self.emergency or self.retroactive_approval_due is None:
            raise InvalidTransition(
                f"deployment {self.change_ticket} is {self.status}; it can no longer be approved"
            )
        due = self.retroactive_approval_due
        self._approve_retroactively(
            due=due,
            late=occurred_at > due,
            actor=actor,
            occurred_at=occurred_at,
            source_event_id=source_event_id,
        )

    def start(self, *, actor: str, occurred_at: datetime, source_event_id: str | None) -> None:
        if self.status not in ("requested", "approved"):
            raise InvalidTransition(
                f"deployment {self.change_ticket} is {self.status}; it cannot be started"
            )
        if self.approver is None and not self.emergency:
            raise ApprovalRequired(
                f"deployment {self.change_ticket} has no approval; approve it before starting "
                "(only an emergency change may start first)"
            )
        self._start(
            approved=self.approver is not None,
            actor=actor,
            occurred_at=occurred_at,
            source_event_id=source_event_id,
        )

    def promote(self, *, actor: str, occurred_at: datetime, source_event_id: str | None) -> None:
        if self.status != "started":
            raise InvalidTransition(
                f"deployment {self.change_ticket} is {self.status}; only a started one is promoted"
            )
        self._promote(actor=actor, occurred_at=occurred_at, source_event_id=source_event_id)

    def roll_back(
        self,
        *,
        rollback_id: str,
        level: int,
        trigger: str,
        actor: str,
        occurred_at: datetime,
        source_event_id: str | None,
    ) -> None:
        if self.status not in ("started", "promoted"):
            raise InvalidTransition(
                f"deployment {self.change_ticket} is {self.status}; nothing to roll back"
            )
        self._roll_back(
            rollback_id=rollback_id,
            level=level,
            trigger=trigger,
            actor=actor,
            occurred_at=occurred_at,
            source_event_id=source_event_id,
        )

    def retroactive_approval_overdue(self, at: datetime) -> bool:
        """Is an emergency change still unapproved past its 24-hour window at ``at``?"""
        due = self.retroactive_approval_due
        return due is not None and self.approver is None and at > due

    # --- events ----------------------------------------------------------------------

    @event(Approved)
    def _approve(self, *, actor: str, occurred_at: datetime, source_event_id: str | None) -> None:
        self.approver = actor
        self.status = "approved"

    @event(RetroactivelyApproved)
    def _approve_retroactively(
        self,
        *,
        due: datetime,
        late: bool,
        actor: str,
        occurred_at: datetime,
        source_event_id: str | None,
    ) -> None:
        self.approver = actor

    @event(Started)
    def _start(
        self, *, approved: bool, actor: str, occurred_at: datetime, source_event_id: str | None
    ) -> None:
        self.status = "started"
        if not approved:
            self.retroactive_approval_due = occurred_at + RETROACTIVE_APPROVAL_WINDOW

    @event(Promoted)
    def _promote(self, *, actor: str, occurred_at: datetime, source_event_id: str | None) -> None:
        self.status = "promoted"

    @event(RolledBack)
    def _roll_back(
        self,
        *,
        rollback_id: str,
        level: int,
        trigger: str,
        actor: str,
        occurred_at: datetime,
        source_event_id: str | None,
    ) -> None:
        self.status = "rolled_back"


class Rollback(AuditAggregate):
    """A rollback: its level, what triggered it, and the evidence."""

    class Executed(AuditCreated):
        rollback_id: str
        change_ticket: str
        service: str
        level: int
        trigger: str
        reason: str
        evidence: dict[str, str]

    @staticmethod
    def create_id(rollback_id: str, **_: Any) -> UUID:
        return natural_id("rollback", rollback_id)

    @event(Executed)
    def __init__(
        self,
        *,
        rollback_id: str,
        change_ticket: str,
        service: str,
        level: int,
        trigger: str,
        reason: str,
        evidence: dict[str, str],
        actor: str,
        occurred_at: datetime,
        source_event_id: str | None,
    ) -> None:
        self.level = level
        self.trigger = trigger
