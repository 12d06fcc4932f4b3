"""The rollback guard's I/O: deployments from the ledger, rollbacks into it.

At start, :meth:`GuardWorker.load` reads every deployment event up to the ledger's head
straight from the ledger (the truth, not a topic's retention), so a restarted guard knows
every watched deployment at once; ``ledger.events`` then brings the later ones (positions
at or before the loaded head are skipped). Telemetry windows start empty after a restart:
a trigger needs a fresh window of evidence (GuardConfig.window, default 5 minutes).

A trigger is recorded with ``AuditTrail.roll_back_deployment``: the rollback and the
deployment's end in one atomic append. Exactly once per deployment, whatever is
redelivered or however many guards run: the domain refuses a second rollback of a
deployment that is rolled back (InvalidTransition) and a second Rollback with the same
``RB-<ticket>`` id (IntegrityError); either means "already recorded" here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal

from eventsourcing.persistence import IntegrityError

from domain.application import AuditTrail
from domain.base import natural_id
from domain.errors import InvalidField, InvalidTransition
from ledger.factory import application_env, open_store
from ledger.settings import Settings
from projections.core import decoder

from .codecs import LedgerMessage
from .guard import DEFAULT_ACTOR, GuardConfig, Trigger
from .guard_book import DEPLOYMENT_TOPICS, GuardBook
from .messages import RawMessage, Rejection

__all__ = ["GuardWorker", "Verdicts"]

_PAGE = 1_000


@dataclass
class Verdicts:
    """What one evaluation did: rollbacks recorded now, and ones already in the ledger."""

    recorded: list[Trigger] = field(default_factory=list)
    already: list[Trigger] = field(default_factory=list)


class GuardWorker:
    """A :class:`GuardBook` on the ledger ``settings`` names."""

    def __init__(
        self, settings: Settings, config: GuardConfig | None = None, actor: str = DEFAULT_ACTOR
    ) -> None:
        self.actor = actor
        self.book = GuardBook(config)
        self.store = open_store(settings)
        self.trail = AuditTrail(env=application_env(settings))

    def close(self) -> None:
        self.trail.close()
        self.store.close()

    def __enter__(self) -> GuardWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(self) -> int:
        """Apply every deployment event up to the head; return the head (-1: empty)."""
        head = self.store.max_position()
        if head is None:
            return -1
        decode = decoder().decode
        first = 0
        while first <= head:
            records = self.store.select_records(first, head, DEPLOYMENT_TOPICS, _PAGE)
            for record in records:
                self.book.apply(
                    record.position, record.topic, record.originator_id, decode(record.state)
                )
            if len(records) < _PAGE:
                break
            first = records[-1].position + 1
        self.book.position = head
        return head

    def on_ledger(self, message: LedgerMessage) -> None:
        self.book.apply(message.position, message.topic, message.originator_id, message.payload)

    def on_telemetry(self, message: RawMessage) -> Rejection | None:
        """Route one telemetry record; a malformed one comes back as a Rejection."""
        try:
            document = json.loads(message.value, parse_float=Decimal)
        except (ValueError, RecursionError) as exc:  # also 5,000-digit integers, deep nests
            return Rejection(message, "message", f"is not a JSON document: {exc}")
        try:
            self.book.observe(message.topic, document)
        except InvalidField as exc:
            return Rejection(message, exc.field, str(exc))
        return None

    def roll_back_due(self) -> Verdicts:
        """Record the rollbacks due at the newest telemetry time seen."""
        verdicts = Verdicts()
        for trigger in self.book.evaluate():
            try:
                self.trail.roll_back_deployment(
                    natural_id("deployment", trigger.change_ticket), **trigger.command(self.actor)
                )
            except (InvalidTransition, IntegrityError):
                verdicts.already.append(trigger)
            else:
                verdicts.recorded.append(trigger)
        return verdicts
