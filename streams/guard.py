"""Automated rollback triggers: compare a deployment's candidate against its baseline.

Pure logic (no Faust, no Kafka, no database). While a CANARY, BLUE_GREEN or SHADOW
deployment is watched, the guard agent feeds it samples tagged ``baseline`` or
``candidate`` (requests, model outcomes, resource readings) and manual stop commands, and
calls :meth:`RollbackGuard.evaluate`. The first breach yields one :class:`Trigger` whose
``command()`` is exactly the keyword arguments of
``domain.application.AuditTrail.roll_back_deployment`` (minus the deployment id), so the
agent records the rollback and its evidence in the ledger in one call.

Rules (defaults from the issue, all in :class:`GuardConfig`):

* LATENCY: candidate p95 minus baseline p95 > 100 ms. Each p95 comes from a DDSketch
  (1 % relative accuracy), rounded to 0.1 ms; the verdict uses the rounded values, the ones
  shown in the reason and evidence.
* ERROR_RATE: candidate error rate (status >= 500 or "error") > 1 %, exact from counts.
* ACCURACY: candidate prediction accuracy < 75 %, exact from counts.
* RESOURCE: candidate CPU > 90 % or memory > 90 %, each as the **p95 (nearest rank)** of the
  window's readings: one spike among twenty or more readings does not roll back, a
  sustained load does. With fewer than 20 readings the nearest-rank p95 is the maximum.
* MANUAL: a stop command, honoured at the first evaluation at or after its time.

Windows: counts and sketches live in buckets of ``bucket`` (default 10 s) per variant; a
verdict at ``now`` uses the ``window`` (default 5 min) of complete buckets before the bucket
holding ``now``, never earlier than the deployment's start (earlier samples are ignored).
A LATENCY verdict needs ``min_samples`` (default 50) requests from each variant; ERROR_RATE
and ACCURACY need ``min_samples`` candidate requests / outcomes (they compare the candidate
with an absolute threshold; the baseline is shown when present). So a handful of slow or
failed requests never rolls a deployment back.

Several breaches at once: the trigger is the first in :data:`TRIGGER_PRIORITY` (MANUAL >
ERROR_RATE > LATENCY > ACCURACY > RESOURCE); the others are listed in the evidence
(``also_breached`` and one ``also_<kind>`` reason each).

Exactly once: after the first Trigger, ``evaluate`` returns None for good. Its
``rollback_id`` is ``RB-<change_ticket>``, so a second recording (another process, a retry)
is refused by the ledger, which makes the rollback exactly once across processes.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import TypedDict

from ddsketch import DDSketch

from domain.deployments import ROLLBACK_LEVELS, ROLLBACK_TRIGGERS
from domain.errors import InvalidField

from .slo import RELATIVE_ACCURACY, RequestSample

__all__ = [
    "DEFAULT_ACTOR",
    "TRIGGER_PRIORITY",
    "VARIANTS",
    "WATCHED_STRATEGIES",
    "GuardConfig",
    "ManualStop",
    "ModelOutcome",
    "ResourceSample",
    "RollbackCommand",
    "RollbackGuard",
    "Trigger",
    "VariantRequest",
    "WatchedDeployment",
]

WATCHED_STRATEGIES = frozenset({"CANARY", "BLUE_GREEN", "SHADOW"})
VARIANTS = ("baseline", "candidate")
TRIGGER_PRIORITY = ("MANUAL", "ERROR_RATE", "LATENCY", "ACCURACY", "RESOURCE")
DEFAULT_ACTOR = "rollback-guard"
_LABELS = {"CANARY": "canary", "BLUE_GREEN": "green", "SHADOW": "shadow"}
_MAX_REASON = 200  # the domain's limit on a reason
assert set(TRIGGER_PRIORITY) == ROLLBACK_TRIGGERS


def _aware(value: object, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidField(name, value, "must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidField(name, value, "has no time zone; give UTC")
    return value


def _variant(value: object) -> None:
    if value not in VARIANTS:
        raise InvalidField("variant", value, "must be 'baseline' or 'candidate'")


def _pct(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidField(name, value, "must be a number (percent)")
    if not (math.isfinite(value) and 0 <= value <= 100):
        raise InvalidField(name, value, "must be between 0 and 100")


@dataclass(frozen=True)
class WatchedDeployment:
    """The deployment under watch: its ticket, service, strategy and both versions."""

    change_ticket: str
    service: str
    strategy: str
    started_at: datetime
    baseline_version: str
    candidate_version: str

    def __post_init__(self) -> None:
        for name in ("change_ticket", "service", "baseline_version", "candidate_version"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidField(name, value, "must be a non-empty string")
        if self.strategy not in WATCHED_STRATEGIES:
            raise InvalidField(
                "strategy", self.strategy, "must be one of " + ", ".join(sorted(WATCHED_STRATEGIES))
            )
        _aware(self.started_at, "started_at")


@dataclass(frozen=True, slots=True)
class VariantRequest(RequestSample):
    """A RequestSample tagged ``baseline`` or ``candidate``."""

    variant: str

    def __post_init__(self) -> None:
        _variant(self.variant)


@dataclass(frozen=True)
class ModelOutcome:
    """Whether one prediction of a variant's model turned out correct."""

    variant: str
    correct: bool
    time: datetime

    def __post_init__(self) -> None:
        _variant(self.variant)
        if not isinstance(self.correct, bool):
            raise InvalidField("correct", self.correct, "must be true or false")
        _aware(self.time, "time")


@dataclass(frozen=True)
class ResourceSample:
    """One CPU and memory reading (percent) of a variant."""

    variant: str
    cpu_pct: Decimal | float
    memory_pct: Decimal | float
    time: datetime

    def __post_init__(self) -> None:
        _variant(self.variant)
        _pct(self.cpu_pct, "cpu_pct")
        _pct(self.memory_pct, "memory_pct")
        _aware(self.time, "time")


@dataclass(frozen=True)
class ManualStop:
    """An operator's command to roll the deployment back."""

    actor: str
    reason: str
    time: datetime

    def __post_init__(self) -> None:
        for name in ("actor", "reason"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidField(name, value, "must be a non-empty string")
        _aware(self.time, "time")


_THRESHOLDS = (
    "latency_increase_ms",
    "max_error_rate_pct",
    "min_accuracy_pct",
    "max_cpu_pct",
    "max_memory_pct",
)


def _default_levels() -> Mapping[str, int]:
    return MappingProxyType(dict.fromkeys(sorted(ROLLBACK_TRIGGERS), 1))


@dataclass(frozen=True)
class GuardConfig:
    """Thresholds (percent and milliseconds), the window and the rollback level per trigger."""

    latency_increase_ms: Decimal = Decimal(100)
    max_error_rate_pct: Decimal = Decimal(1)
    min_accuracy_pct: Decimal = Decimal(75)
    max_cpu_pct: Decimal = Decimal(90)
    max_memory_pct: Decimal = Decimal(90)
    window: timedelta = timedelta(minutes=5)
    bucket: timedelta = timedelta(seconds=10)
    min_samples: int = 50
    levels: Mapping[str, int] = field(default_factory=_default_levels, hash=False)

    def __post_init__(self) -> None:
        for name in _THRESHOLDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Decimal | int):
                raise InvalidField(name, value, "must be a Decimal")
            if not Decimal(value).is_finite() or value < 0:
                raise InvalidField(name, value, "must be a finite number >= 0")
            object.__setattr__(self, name, Decimal(value))
        if self.bucket <= timedelta(0) or self.bucket % timedelta(seconds=1):
            raise InvalidField("bucket", self.bucket, "must be a whole number of seconds > 0")
        if self.window <= timedelta(0) or self.window % self.bucket:
            raise InvalidField("window", self.window, "must be a positive multiple of bucket")
        if (
            isinstance(self.min_samples, bool)
            or not isinstance(self.min_samples, int)
            or (self.min_samples < 1)
        ):
            raise InvalidField("min_samples", self.min_samples, "must be a whole number >= 1")
        levels = dict(_default_levels())
        for kind, level in self.levels.items():
            if kind not in ROLLBACK_TRIGGERS:
                known = ", ".join(sorted(ROLLBACK_TRIGGERS))
                raise InvalidField("levels", kind, f"is not a rollback trigger ({known})")
            if isinstance(level, bool) or level not in ROLLBACK_LEVELS:
                raise InvalidField(f"levels[{kind}]", level, "must be 1, 2, 3 or 4")
            levels[kind] = level
        object.__setattr__(self, "levels", MappingProxyType(levels))


class RollbackCommand(TypedDict):
    """The keyword arguments of AuditTrail.roll_back_deployment after the deployment id."""

    rollback_id: str
    level: int
    trigger: str
    reason: str
    evidence: dict[str, str]
    actor: str
    occurred_at: datetime


@dataclass(frozen=True)
class Trigger:
    """A decision to roll back, with its evidence, ready for the ledger."""

    change_ticket: str
    service: str
    kind: str  # one of domain.deployments.ROLLBACK_TRIGGERS
    level: int  # domain.deployments.ROLLBACK_LEVELS
    reason: str  # one line, at most 200 characters
    evidence: Mapping[str, str] = field(hash=False)
    rollback_id: str  # RB-<change_ticket>: recording twice is refused by the ledger
    occurred_at: datetime

    def command(self, actor: str = DEFAULT_ACTOR) -> RollbackCommand:
        """Keyword arguments for AuditTrail.roll_back_deployment(deployment_id, **...)."""
        return {
            "rollback_id": self.rollback_id,
            "level": self.level,
            "trigger": self.kind,
            "reason": self.reason,
            "evidence": dict(self.evidence),
            "actor": actor,
            "occurred_at": self.occurred_at,
        }


class _Bucket:
    """One variant's requests and outcomes over one bucket of time."""

    __slots__ = ("correct", "errors", "outcomes", "sketch", "total")

    def __init__(self) -> None:
        self.total = 0
        self.errors = 0
        self.sketch = DDSketch(RELATIVE_ACCURACY)
        self.outcomes = 0
        self.correct = 0


@dataclass
class _Stats:
    """One variant over the window."""

    requests: int = 0
    errors: int = 0
    sketch: DDSketch = field(default_factory=lambda: DDSketch(RELATIVE_ACCURACY))
    outcomes: int = 0
    correct: int = 0
    cpu: list[float] = field(default_factory=list)
    memory: list[float] = field(default_factory=list)

    def p95_ms(self) -> Decimal | None:
        value: float | None = self.sketch.get_quantile_value(0.95)
        return None if value is None or not self.requests else _round(value, "0.1")

    def error_pct(self) -> Decimal | None:
        return _percent(self.errors, self.requests)

    def accuracy_pct(self) -> Decimal | None:
        return _percent(self.correct, self.outcomes)


def _round(value: float, places: str) -> Decimal:
    return Decimal(repr(value)).quantize(Decimal(places))


def _percent(part: int, whole: int) -> Decimal | None:
    """``part / whole`` in percent, rounded half-even to 0.01; None when ``whole`` is 0."""
    if not whole:
        return None
    return Decimal(round(Fraction(part * 100, whole) * 100)).scaleb(-2)


def _p95(values: list[float]) -> Decimal | None:
    """Nearest-rank p95: the ceil(0.95 n)-th smallest value, exactly as read."""
    if not values:
        return None
    ordered = sorted(values)
    return Decimal(repr(ordered[math.ceil(len(ordered) * 95 / 100) - 1]))


def _fmt(value: Decimal | None) -> str:
    """A decimal without exponent or trailing zeros; "none" when absent."""
    if value is None:
        return "none"
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _one_line(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass(frozen=True)
class _Breach:
    kind: str
    reason: str
    evidence: dict[str, str]


class RollbackGuard:
    """Watches one deployment; ``evaluate(now)`` returns its Trigger once, then None."""

    def __init__(self, deployment: WatchedDeployment, config: GuardConfig | None = None) -> None:
        self.deployment = deployment
        self.config = config or GuardConfig()
        self._bucket_s = int(self.config.bucket.total_seconds())
        self._span = int(self.config.window / self.config.bucket)  # buckets per window
        self._started = deployment.started_at.timestamp()
        self._buckets: dict[str, dict[int, _Bucket]] = {v: {} for v in VARIANTS}
        self._resources: dict[str, deque[tuple[float, float, float]]] = {
            v: deque() for v in VARIANTS
        }
        self._stops: list[ManualStop] = []
        self._newest = -1  # newest bucket index seen, for pruning
        self.ignored = 0  # samples from before the deployment started
        self._trigger: Trigger | None = None

    @property
    def triggered(self) -> Trigger | None:
        """The trigger already returned by evaluate, if any."""
        return self._trigger

    # --- observations ---------------------------------------------------------------------

    def observe(self, item: VariantRequest | ModelOutcome | ResourceSample | ManualStop) -> None:
        """Dispatch one observation to the method for its type."""
        if isinstance(item, VariantRequest):
            self.observe_requests((item,))
        elif isinstance(item, ModelOutcome):
            self.observe_outcome(item)
        elif isinstance(item, ResourceSample):
            self.observe_resources(item)
        elif isinstance(item, ManualStop):
            self.stop(item)
        else:
            raise InvalidField("observation", item, "is not a guard observation")

    def _bucket(self, variant: str, when: datetime) -> _Bucket | None:
        stamp = when.timestamp()
        if stamp < self._started:
            self.ignored += 1
            return None
        index = int(stamp // self._bucket_s)
        buckets = self._buckets[variant]
        bucket = buckets.get(index)
        if bucket is None:
            bucket = buckets[index] = _Bucket()
            if index > self._newest:
                self._newest = index
                self._prune(index)
        return bucket

    def _prune(self, newest: int) -> None:
        """Drop buckets too old for any window ending at or after the newest bucket."""
        oldest = newest - self._span
        for buckets in self._buckets.values():
            for index in [i for i in buckets if i < oldest]:
                del buckets[index]
        horizon = oldest * self._bucket_s
        for readings in self._resources.values():
            while readings and readings[0][0] < horizon:
                readings.popleft()

    def observe_requests(self, samples: Iterable[VariantRequest]) -> None:
        for sample in samples:
            if sample.service != self.deployment.service:
                watched = self.deployment.service
                raise InvalidField("service", sample.service, f"is not the watched {watched}")
            bucket = self._bucket(sample.variant, sample.time)
            if bucket is None:
                continue
            bucket.total += 1
            status = sample.status
            if status == "error" if type(status) is str else status >= 500:  # type: ignore[operator]
                bucket.errors += 1
            bucket.sketch.add(float(sample.latency_ms))

    def observe_outcome(self, outcome: ModelOutcome) -> None:
        bucket = self._bucket(outcome.variant, outcome.time)
        if bucket is not None:
            bucket.outcomes += 1
            bucket.correct += outcome.correct

    def observe_resources(self, reading: ResourceSample) -> None:
        stamp = reading.time.timestamp()
        if stamp < self._started:
            self.ignored += 1
            return
        index = int(stamp // self._bucket_s)
        if index > self._newest:
            self._newest = index
            self._prune(index)
        readings = self._resources[reading.variant]
        entry = (stamp, float(reading.cpu_pct), float(reading.memory_pct))
        if readings and readings[-1][0] > stamp:  # out of order: keep the deque sorted
            ordered = sorted([*readings, entry])
            readings.clear()
            readings.extend(ordered)
        else:
            readings.append(entry)

    def stop(self, command: ManualStop) -> None:
        """A manual stop: the deployment is rolled back at the next evaluation."""
        self._stops.append(command)

    # --- verdict --------------------------------------------------------------------------

    def _window(self, now: datetime) -> tuple[int, int, datetime, datetime]:
        end = math.floor(now.timestamp() / self._bucket_s)
        first = end - self._span
        started = self.deployment.started_at.astimezone(UTC)
        start = max(datetime.fromtimestamp(first * self._bucket_s, UTC), started)
        return first, end, start, datetime.fromtimestamp(end * self._bucket_s, UTC)

    def _stats(self, first: int, end: int) -> dict[str, _Stats]:
        stats = {v: _Stats() for v in VARIANTS}
        lo, hi = first * self._bucket_s, end * self._bucket_s
        for variant, buckets in self._buckets.items():
            into = stats[variant]
            for index, bucket in buckets.items():
                if first <= index < end:
                    into.requests += bucket.total
                    into.errors += bucket.errors
                    into.outcomes += bucket.outcomes
                    into.correct += bucket.correct
                    if bucket.total:
                        into.sketch.merge(bucket.sketch)
            for stamp, cpu, memory in self._resources[variant]:
                if lo <= stamp < hi:
                    into.cpu.append(cpu)
                    into.memory.append(memory)
        return stats

    def evaluate(self, now: datetime) -> Trigger | None:
        """The rollback to record now, or None. Returns a Trigger at most once."""
        if self._trigger is not None:
            return None
        _aware(now, "now")
        first, end, start, stop = self._window(now)
        stats = self._stats(first, end)
        base, cand = stats["baseline"], stats["candidate"]
        common = {
            "window_start": start.isoformat(),
            "window_end": stop.isoformat(),
            "strategy": self.deployment.strategy,
            "baseline_version": self.deployment.baseline_version,
            "candidate_version": self.deployment.candidate_version,
        }
        breaches = [
            b
            for b in (
                self._manual(now, base, cand),
                self._error_rate(base, cand),
                self._latency(base, cand),
                self._accuracy(base, cand),
                self._resource(base, cand),
            )
            if b is not None
        ]
        if not breaches:
            return None
        chosen, others = breaches[0], breaches[1:]
        evidence = {**common, **chosen.evidence}
        if others:
            evidence["also_breached"] = ", ".join(b.kind for b in others)
            for other in others:
                evidence[f"also_{other.kind.lower()}"] = other.reason
        deployment = self.deployment
        self._trigger = Trigger(
            change_ticket=deployment.change_ticket,
            service=deployment.service,
            kind=chosen.kind,
            level=self.config.levels[chosen.kind],
            reason=chosen.reason,
            evidence=MappingProxyType(evidence),
            rollback_id=f"RB-{deployment.change_ticket}",
            occurred_at=now.astimezone(UTC),
        )
        return self._trigger

    @property
    def _label(self) -> str:
        return _LABELS[self.deployment.strategy]

    def _manual(self, now: datetime, base: _Stats, cand: _Stats) -> _Breach | None:
        due = [s for s in self._stops if s.time <= now]
        if not due:
            return None
        stop = min(due, key=lambda s: s.time)
        return _Breach(
            "MANUAL",
            _one_line(f"manual stop by {stop.actor}: {stop.reason}", _MAX_REASON),
            {
                "metric": "manual stop",
                "actor": stop.actor,
                "stop_reason": stop.reason,
                "stopped_at": stop.time.astimezone(UTC).isoformat(),
                "baseline_samples": str(base.requests),
                "candidate_samples": str(cand.requests),
            },
        )

    def _error_rate(self, base: _Stats, cand: _Stats) -> _Breach | None:
        limit = self.config.max_error_rate_pct
        if cand.requests < self.config.min_samples:
            return None
        if Fraction(cand.errors * 100, cand.requests) <= Fraction(limit):
            return None
        rate = cand.error_pct()
        return _Breach(
            "ERROR_RATE",
            f"{self._label} error rate {_fmt(rate)} % over {cand.requests} requests "
            f"(threshold {_fmt(limit)} %)",
            {
                "metric": "error rate %",
                "baseline": _fmt(base.error_pct()),
                "candidate": _fmt(rate),
                "threshold": f"> {_fmt(limit)}",
                "baseline_samples": str(base.requests),
                "candidate_samples": str(cand.requests),
                "candidate_errors": str(cand.errors),
            },
        )

    def _latency(self, base: _Stats, cand: _Stats) -> _Breach | None:
        limit = self.config.latency_increase_ms
        if min(base.requests, cand.requests) < self.config.min_samples:
            return None
        base_p95, cand_p95 = base.p95_ms(), cand.p95_ms()
        assert base_p95 is not None and cand_p95 is not None
        delta = cand_p95 - base_p95
        if delta <= limit:
            return None
        return _Breach(
            "LATENCY",
            f"{self._label} p95 latency +{_fmt(delta)} ms over baseline "
            f"(threshold +{_fmt(limit)} ms)",
            {
                "metric": "p95 latency ms",
                "baseline": _fmt(base_p95),
                "candidate": _fmt(cand_p95),
                "delta": _fmt(delta),
                "threshold": f"> baseline + {_fmt(limit)}",
                "baseline_samples": str(base.requests),
                "candidate_samples": str(cand.requests),
            },
        )

    def _accuracy(self, base: _Stats, cand: _Stats) -> _Breach | None:
        limit = self.config.min_accuracy_pct
        if cand.outcomes < self.config.min_samples:
            return None
        if Fraction(cand.correct * 100, cand.outcomes) >= Fraction(limit):
            return None
        accuracy = cand.accuracy_pct()
        return _Breach(
            "ACCURACY",
            f"{self._label} prediction accuracy {_fmt(accuracy)} % over {cand.outcomes} "
            f"outcomes (threshold {_fmt(limit)} %)",
            {
                "metric": "prediction accuracy %",
                "baseline": _fmt(base.accuracy_pct()),
                "candidate": _fmt(accuracy),
                "threshold": f"< {_fmt(limit)}",
                "baseline_samples": str(base.outcomes),
                "candidate_samples": str(cand.outcomes),
            },
        )

    def _resource(self, base: _Stats, cand: _Stats) -> _Breach | None:
        cpu, memory = _p95(cand.cpu), _p95(cand.memory)
        if cpu is None or memory is None:
            return None
        cpu_limit, memory_limit = self.config.max_cpu_pct, self.config.max_memory_pct
        readings = (("CPU", cpu, cpu_limit), ("memory", memory, memory_limit))
        hot = [(n, v, t) for n, v, t in readings if v > t]
        if not hot:
            return None
        name, value, limit = hot[0]
        parts = ", ".join(f"{n} {_fmt(v)} %" for n, v, _ in hot)
        limits = sorted({_fmt(t) for _, _, t in hot})
        return _Breach(
            "RESOURCE",
            f"{self._label} p95 {parts} (threshold {' / '.join(limits)} %)",
            {
                "metric": f"p95 {name.lower()} %",
                "baseline": _fmt(_p95(base.cpu if name == "CPU" else base.memory)),
                "candidate": _fmt(value),
                "threshold": f"> {_fmt(limit)}",
                "baseline_samples": str(len(base.cpu)),
                "candidate_samples": str(len(cand.cpu)),
                "candidate_cpu_p95_pct": _fmt(cpu),
                "candidate_memory_p95_pct": _fmt(memory),
                "baseline_cpu_p95_pct": _fmt(_p95(base.cpu)),
                "baseline_memory_p95_pct": _fmt(_p95(base.memory)),
            },
        )
