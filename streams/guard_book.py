"""Which deployments the rollback guard watches, and the telemetry routed to each (pure).

The guard worker feeds a :class:`GuardBook` the ledger's deployment events (from the
ledger at start, then from ``ledger.events``) and the telemetry topics; the book keeps
one :class:`~streams.guard.RollbackGuard` per watched deployment and hands out their
triggers. It does no I/O.

Which deployments: a CANARY, BLUE_GREEN or SHADOW deployment from its ``Started`` event
until it is promoted or rolled back. Its candidate is the version it deploys; its baseline
is the service's version last promoted in the ledger ("unknown" before any).

Telemetry messages (JSON objects) name the ``service`` and the ``version`` that served:

* ``telemetry.requests``: service, endpoint, latency_ms, status, time, version
* ``telemetry.resources``: service, version, cpu_pct, memory_pct, time
* ``model.outcomes``: service, version, correct, time
* ``deployments.stop``: change_ticket, actor, reason, time (a manual stop)

A message is routed to every watched deployment of its service: as the candidate when its
version is the candidate's, as the baseline otherwise. A message of a service with no
watched deployment, or without a version, is not the guard's business and is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.errors import InvalidField

from .guard import (
    WATCHED_STRATEGIES,
    GuardConfig,
    ManualStop,
    ModelOutcome,
    ResourceSample,
    RollbackGuard,
    Trigger,
    VariantRequest,
    WatchedDeployment,
)
from .slo import SampleError, sample_from_mapping, utc_time
from .topics import DEPLOYMENT_STOPS, MODEL_OUTCOMES, TELEMETRY_REQUESTS, TELEMETRY_RESOURCES

__all__ = ["DEPLOYMENT_TOPICS", "GUARD_TOPICS", "UNKNOWN_BASELINE", "GuardBook"]

_PREFIX = "domain.deployments:Deployment."
DEPLOYMENT_TOPICS = tuple(
    _PREFIX + name for name in ("Requested", "Started", "Promoted", "RolledBack")
)
GUARD_TOPICS = (TELEMETRY_REQUESTS, TELEMETRY_RESOURCES, MODEL_OUTCOMES, DEPLOYMENT_STOPS)
UNKNOWN_BASELINE = "unknown"


@dataclass
class _Change:
    change_ticket: str
    service: str
    version: str
    strategy: str


def _text(message: Mapping[str, Any], name: str) -> str:
    value = message.get(name)
    if not isinstance(value, str) or not value.strip():
        raise SampleError(name, value, "must be a non-empty string")
    return value.strip()


def _number(message: Mapping[str, Any], name: str) -> Decimal:
    value = message.get(name)
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float | str):
        raise SampleError(name, value, "must be a number")
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise SampleError(name, value, "must be a number") from None
    if not number.is_finite():  # NaN, sNaN and infinities compare by raising or never
        raise SampleError(name, value, "must be a finite number")
    return number


class GuardBook:
    """The watched deployments, each with its RollbackGuard."""

    def __init__(self, config: GuardConfig | None = None) -> None:
        self.config = config or GuardConfig()
        self.position = -1  # the last ledger position applied
        self._changes: dict[str, _Change] = {}  # by originator id (the deployment's id)
        self._current: dict[str, str] = {}  # service -> version last promoted
        self.guards: dict[str, RollbackGuard] = {}  # change ticket -> its guard
        self.newest: datetime | None = None  # the newest telemetry time seen

    # --- the ledger -----------------------------------------------------------------------

    def apply(
        self, position: int, topic: str, originator_id: str, payload: Mapping[str, Any]
    ) -> None:
        """One ledger event; events at or before :attr:`position` are ignored (redelivery)."""
        if position <= self.position:
            return
        self.position = position
        if not topic.startswith(_PREFIX):
            return
        kind = topic.removeprefix(_PREFIX)
        if kind == "Requested":
            self._changes[originator_id] = _Change(
                payload["change_ticket"], payload["service"], payload["version"],
                payload["strategy"],
            )  # fmt: skip
            return
        change = self._changes.get(originator_id)
        if change is None:  # requested before the ledger this book read: not watched
            return
        if kind == "Started" and change.strategy in WATCHED_STRATEGIES:
            self.guards[change.change_ticket] = RollbackGuard(
                WatchedDeployment(
                    change_ticket=change.change_ticket,
                    service=change.service,
                    strategy=change.strategy,
                    started_at=utc_time(payload["occurred_at"]),
                    baseline_version=self._current.get(change.service, UNKNOWN_BASELINE),
                    candidate_version=change.version,
                ),
                self.config,
            )
        elif kind == "Promoted":
            self._current[change.service] = change.version
            self.guards.pop(change.change_ticket, None)
            del self._changes[originator_id]
        elif kind == "RolledBack":
            self.guards.pop(change.change_ticket, None)
            del self._changes[originator_id]

    # --- telemetry ------------------------------------------------------------------------

    def observe(self, topic: str, message: object) -> int:
        """Route one telemetry message; return how many guards it reached.

        Raises ``SampleError`` / ``InvalidField`` naming the field of a malformed message.
        """
        if not isinstance(message, Mapping):
            raise SampleError("message", message, "must be a JSON object")
        if topic == DEPLOYMENT_STOPS:
            ticket = _text(message, "change_ticket")
            stop = ManualStop(
                _text(message, "actor"), _text(message, "reason"), utc_time(message.get("time"))
            )
            self._saw(stop.time)
            guard = self.guards.get(ticket)
            if guard is None:
                return 0
            guard.stop(stop)
            return 1
        service = _text(message, "service")
        watching = [g for g in self.guards.values() if g.deployment.service == service]
        if "version" not in message:
            return 0
        version = _text(message, "version")
        when = utc_time(message.get("time"))
        self._saw(when)
        for guard in watching:
            variant = "candidate" if version == guard.deployment.candidate_version else "baseline"
            guard.observe(self._item(topic, message, variant, when))
        return len(watching)

    def _item(
        self, topic: str, message: Mapping[str, Any], variant: str, when: datetime
    ) -> VariantRequest | ModelOutcome | ResourceSample:
        if topic == TELEMETRY_REQUESTS:
            s = sample_from_mapping(message)
            return VariantRequest(s.service, s.endpoint, s.latency_ms, s.status, s.time, variant)
        if topic == MODEL_OUTCOMES:
            correct = message.get("correct")
            if not isinstance(correct, bool):
                raise SampleError("correct", correct, "must be true or false")
            return ModelOutcome(variant, correct, when)
        if topic == TELEMETRY_RESOURCES:
            return ResourceSample(
                variant, _number(message, "cpu_pct"), _number(message, "memory_pct"), when
            )
        raise InvalidField("topic", topic, "is not a telemetry topic of the guard")

    def _saw(self, when: datetime) -> None:
        if self.newest is None or when > self.newest:
            self.newest = when

    # --- verdicts -------------------------------------------------------------------------

    def evaluate(self, now: datetime | None = None) -> list[Trigger]:
        """Triggers due at ``now`` (default: the newest telemetry time seen), each once."""
        moment = now or self.newest
        if moment is None:
            return []
        return [t for g in self.guards.values() if (t := g.evaluate(moment)) is not None]
