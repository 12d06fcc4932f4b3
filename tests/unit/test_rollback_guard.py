"""Rollback triggers (streams/guard.py): each kind, minimum samples, priority, exactly once.

Pure logic with exact values; the last tests record a Trigger through the real domain
application (in-memory persistence) to prove the evidence has the shape it accepts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.application import AuditTrail
from domain.deployments import ROLLBACK_TRIGGERS
from domain.errors import InvalidField, InvalidTransition
from streams.guard import (
    TRIGGER_PRIORITY,
    GuardConfig,
    ManualStop,
    ModelOutcome,
    ResourceSample,
    RollbackGuard,
    Trigger,
    VariantRequest,
    WatchedDeployment,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=5)  # the default window is then exactly [T0, T0 + 5 min)
DEPLOYMENT = WatchedDeployment("CHG-1001", "trading-api", "CANARY", T0, "4.1.0", "4.2.0")
WINDOW = {
    "window_start": "2026-03-02T09:00:00+00:00",
    "window_end": "2026-03-02T09:05:00+00:00",
    "strategy": "CANARY",
    "baseline_version": "4.1.0",
    "candidate_version": "4.2.0",
}


def _times(count: int) -> Iterator[datetime]:
    """``count`` instants spread over [T0, T0 + 5 min)."""
    for i in range(count):
        yield T0 + timedelta(seconds=i * 300 / count)


def _requests(
    variant: str, count: int, latency: float = 40.0, errors: int = 0
) -> list[VariantRequest]:
    return [
        VariantRequest("trading-api", "/orders", latency, 503 if i < errors else 200, at, variant)
        for i, at in enumerate(_times(count))
    ]


def _outcomes(guard: RollbackGuard, variant: str, count: int, correct: int) -> None:
    for i, at in enumerate(_times(count)):
        guard.observe(ModelOutcome(variant, i < correct, at))


def _resources(guard: RollbackGuard, variant: str, cpu: list[float], memory: float = 50) -> None:
    for value, at in zip(cpu, _times(len(cpu)), strict=True):
        guard.observe(ResourceSample(variant, value, memory, at))


def _guard(**config: object) -> RollbackGuard:
    return RollbackGuard(DEPLOYMENT, GuardConfig(**config))  # type: ignore[arg-type]


def _healthy(guard: RollbackGuard) -> RollbackGuard:
    guard.observe_requests(_requests("baseline", 60) + _requests("candidate", 60))
    return guard


# --- each trigger kind -------------------------------------------------------------------


def test_latency_over_baseline_by_more_than_100_ms_triggers() -> None:
    guard = _guard()
    guard.observe_requests(_requests("baseline", 60, 40.0) + _requests("candidate", 60, 170.0))
    trigger = guard.evaluate(NOW)
    assert trigger == Trigger(
        change_ticket="CHG-1001",
        service="trading-api",
        kind="LATENCY",
        level=1,
        reason="canary p95 latency +129 ms over baseline (threshold +100 ms)",
        evidence={
            **WINDOW,
            "metric": "p95 latency ms",
            "baseline": "40",  # DDSketch: 40.05 for 40 ms, 169.04 for 170 ms (within 1 %)
            "candidate": "169",
            "delta": "129",
            "threshold": "> baseline + 100",
            "baseline_samples": "60",
            "candidate_samples": "60",
        },
        rollback_id="RB-CHG-1001",
        occurred_at=NOW,
    )


def test_latency_just_over_and_just_under_the_threshold() -> None:
    over = _guard()
    over.observe_requests(_requests("baseline", 60, 40.0) + _requests("candidate", 60, 140.0))
    trigger = over.evaluate(NOW)
    assert trigger is not None
    assert trigger.reason == "canary p95 latency +101.2 ms over baseline (threshold +100 ms)"
    under = _guard()
    under.observe_requests(_requests("baseline", 60, 45.0) + _requests("candidate", 60, 145.0))
    assert under.evaluate(NOW) is None  # 144.0 - 45.2 = 98.8 ms


def test_an_error_rate_over_1_percent_triggers() -> None:
    guard = _guard()
    guard.observe_requests(
        _requests("baseline", 400, errors=2) + _requests("candidate", 150, errors=3)
    )
    trigger = guard.evaluate(NOW)
    assert trigger is not None
    assert (trigger.kind, trigger.level, trigger.reason) == (
        "ERROR_RATE",
        1,
        "canary error rate 2 % over 150 requests (threshold 1 %)",
    )
    assert dict(trigger.evidence) == {
        **WINDOW,
        "metric": "error rate %",
        "baseline": "0.5",
        "candidate": "2",
        "threshold": "> 1",
        "baseline_samples": "400",
        "candidate_samples": "150",
        "candidate_errors": "3",
    }


def test_an_error_rate_of_exactly_1_percent_does_not_trigger() -> None:
    guard = _guard()
    guard.observe_requests(_requests("baseline", 100) + _requests("candidate", 100, errors=1))
    assert guard.evaluate(NOW) is None


def test_accuracy_under_75_percent_triggers() -> None:
    guard = _healthy(_guard())
    _outcomes(guard, "baseline", 90, 81)
    _outcomes(guard, "candidate", 80, 59)
    trigger = guard.evaluate(NOW)
    assert trigger is not None
    assert (trigger.kind, trigger.reason) == (
        "ACCURACY",
        "canary prediction accuracy 73.75 % over 80 outcomes (threshold 75 %)",
    )
    assert dict(trigger.evidence) == {
        **WINDOW,
        "metric": "prediction accuracy %",
        "baseline": "90",
        "candidate": "73.75",
        "threshold": "< 75",
        "baseline_samples": "90",
        "candidate_samples": "80",
    }
    exact = _healthy(_guard())
    _outcomes(exact, "candidate", 80, 60)  # exactly 75 %
    assert exact.evaluate(NOW) is None


def test_sustained_cpu_or_memory_over_90_percent_triggers_a_single_spike_does_not() -> None:
    spike = _guard()
    _resources(spike, "candidate", [50.0] * 19 + [99.0])  # p95 of 20 = the 19th smallest
    assert spike.evaluate(NOW) is None
    guard = _guard()
    _resources(guard, "baseline", [40.0] * 20)
    _resources(guard, "candidate", [50.0] * 2 + [93.5] * 18)
    trigger = guard.evaluate(NOW)
    assert trigger is not None
    assert (trigger.kind, trigger.reason) == ("RESOURCE", "canary p95 CPU 93.5 % (threshold 90 %)")
    assert dict(trigger.evidence) == {
        **WINDOW,
        "metric": "p95 cpu %",
        "baseline": "40",
        "candidate": "93.5",
        "threshold": "> 90",
        "baseline_samples": "20",
        "candidate_samples": "20",
        "candidate_cpu_p95_pct": "93.5",
        "candidate_memory_p95_pct": "50",
        "baseline_cpu_p95_pct": "40",
        "baseline_memory_p95_pct": "50",
    }
    both = _guard()
    _resources(both, "candidate", [95.0] * 4, memory=91.25)
    trigger = both.evaluate(NOW)
    assert trigger is not None
    assert trigger.reason == "canary p95 CPU 95 %, memory 91.25 % (threshold 90 %)"
    assert trigger.evidence["baseline"] == "none"


def test_a_manual_stop_triggers_at_its_time_with_its_level() -> None:
    guard = _guard(levels={"MANUAL": 4})
    _healthy(guard)
    guard.stop(ManualStop("alice", "P&L drift on the canary\nstop it", T0 + timedelta(minutes=2)))
    assert guard.evaluate(T0 + timedelta(minutes=1)) is None  # not yet
    trigger = guard.evaluate(NOW)
    assert trigger is not None
    assert (trigger.kind, trigger.level, trigger.reason) == (
        "MANUAL",
        4,
        "manual stop by alice: P&L drift on the canary stop it",
    )
    assert dict(trigger.evidence) == {
        **WINDOW,
        "metric": "manual stop",
        "actor": "alice",
        "stop_reason": "P&L drift on the canary\nstop it",
        "stopped_at": "2026-03-02T09:02:00+00:00",
        "baseline_samples": "60",
        "candidate_samples": "60",
    }


def test_blue_green_and_shadow_name_the_candidate_in_the_reason() -> None:
    for strategy, label in (("BLUE_GREEN", "green"), ("SHADOW", "shadow")):
        deployment = WatchedDeployment("CHG-7", "trading-api", strategy, T0, "1", "2")
        guard = RollbackGuard(deployment)
        guard.observe_requests(_requests("baseline", 60) + _requests("candidate", 60, errors=6))
        trigger = guard.evaluate(NOW)
        assert trigger is not None
        assert trigger.reason == f"{label} error rate 10 % over 60 requests (threshold 1 %)"
        assert trigger.rollback_id == "RB-CHG-7"


# --- minimum samples, window, priority, exactly once ------------------------------------------


def test_below_the_minimum_samples_nothing_triggers() -> None:
    guard = _guard()
    guard.observe_requests(_requests("baseline", 49, 40.0) + _requests("candidate", 49, 900.0, 49))
    _outcomes(guard, "candidate", 49, 0)
    assert guard.evaluate(NOW) is None
    # latency needs the minimum from both variants: 500 slow candidate requests are not enough
    slow = _guard()
    slow.observe_requests(_requests("baseline", 49, 40.0) + _requests("candidate", 500, 900.0))
    assert slow.evaluate(NOW) is None
    slow.observe_requests(_requests("baseline", 1, 40.0))
    trigger = slow.evaluate(NOW)
    assert trigger is not None and trigger.kind == "LATENCY"


def test_only_the_window_counts_and_samples_before_the_start_are_ignored() -> None:
    guard = _guard()
    early = [
        VariantRequest("trading-api", "/orders", 40.0, 503, T0 - timedelta(seconds=1), "candidate")
    ] * 100
    guard.observe_requests(early)
    assert guard.ignored == 100
    _healthy(guard)
    late = [
        VariantRequest("trading-api", "/orders", 40.0, 503, NOW + timedelta(seconds=1), "candidate")
    ] * 100
    guard.observe_requests(late)  # after the window ending at NOW: not counted yet
    assert guard.evaluate(NOW) is None
    trigger = guard.evaluate(NOW + timedelta(seconds=10))  # the window now ends at 09:05:10
    assert trigger is not None
    assert trigger.reason == "canary error rate 63.29 % over 158 requests (threshold 1 %)"
    assert trigger.evidence["window_start"] == "2026-03-02T09:00:10+00:00"
    # 58 healthy requests from 09:00:10 on and the 100 failed ones at 09:05:01
    assert trigger.evidence["candidate_samples"] == "158"


def test_the_first_breach_by_priority_wins_and_the_others_are_evidence() -> None:
    assert TRIGGER_PRIORITY == ("MANUAL", "ERROR_RATE", "LATENCY", "ACCURACY", "RESOURCE")
    assert set(TRIGGER_PRIORITY) == ROLLBACK_TRIGGERS

    def breaching() -> RollbackGuard:
        guard = _guard(levels={"ERROR_RATE": 2})
        guard.observe_requests(
            _requests("baseline", 60, 40.0) + _requests("candidate", 60, 170.0, errors=3)
        )
        _outcomes(guard, "candidate", 50, 10)
        _resources(guard, "candidate", [97.0] * 3)
        return guard

    trigger = breaching().evaluate(NOW)
    assert trigger is not None
    assert (trigger.kind, trigger.level) == ("ERROR_RATE", 2)
    assert {k: v for k, v in trigger.evidence.items() if k.startswith("also")} == {
        "also_breached": "LATENCY, ACCURACY, RESOURCE",
        "also_latency": "canary p95 latency +129 ms over baseline (threshold +100 ms)",
        "also_accuracy": "canary prediction accuracy 20 % over 50 outcomes (threshold 75 %)",
        "also_resource": "canary p95 CPU 97 % (threshold 90 %)",
    }
    manual = breaching()
    manual.stop(ManualStop("bob", "halt", T0))
    trigger = manual.evaluate(NOW)
    assert trigger is not None
    assert (trigger.kind, trigger.level) == ("MANUAL", 1)
    assert trigger.evidence["also_breached"] == "ERROR_RATE, LATENCY, ACCURACY, RESOURCE"


def test_a_deployment_triggers_exactly_once() -> None:
    guard = _guard()
    guard.observe_requests(_requests("baseline", 60) + _requests("candidate", 60, errors=30))
    assert guard.triggered is None
    first = guard.evaluate(NOW)
    assert first is not None and guard.triggered is first
    guard.stop(ManualStop("alice", "again", T0))
    assert guard.evaluate(NOW) is None
    assert guard.evaluate(NOW + timedelta(minutes=1)) is None


def test_the_trigger_is_recorded_by_the_ledger_once() -> None:
    trail = AuditTrail(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    deployment_id = trail.request_deployment(
        change_ticket="CHG-1001",
        service="trading-api",
        version="4.2.0",
        commit="9f2c1e7",
        strategy="CANARY",
        emergency=False,
        actor="alice",
        occurred_at=T0,
    )
    trail.approve_deployment(deployment_id, actor="bob", occurred_at=T0)
    trail.start_deployment(deployment_id, actor="ops", occurred_at=T0)
    guard = _guard()
    guard.observe_requests(_requests("baseline", 60, 40.0) + _requests("candidate", 60, 170.0))
    trigger = guard.evaluate(NOW)
    assert trigger is not None
    rollback_id = trail.roll_back_deployment(deployment_id, **trigger.command())
    rollback = list(trail.repository.event_store.get(rollback_id))[0]
    assert (rollback.rollback_id, rollback.trigger, rollback.evidence["delta"]) == (  # type: ignore[attr-defined]
        "RB-CHG-1001",
        "LATENCY",
        "129",
    )
    assert rollback.actor == "rollback-guard"  # type: ignore[attr-defined]
    with pytest.raises(InvalidTransition):
        trail.roll_back_deployment(deployment_id, **trigger.command())


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: WatchedDeployment("CHG-1", "svc", "ROLLING", T0, "1", "2"),
            "strategy='ROLLING' must be one of BLUE_GREEN, CANARY, SHADOW",
        ),
        (
            lambda: VariantRequest("svc", "/x", 1.0, 200, T0, "green"),
            "variant='green' must be 'baseline' or 'candidate'",
        ),
        (
            lambda: ResourceSample("candidate", 120, 50, T0),
            "cpu_pct=120 must be between 0 and 100",
        ),
        (
            lambda: ModelOutcome("candidate", 1, T0),  # type: ignore[arg-type]
            "correct=1 must be true or false",
        ),
        (
            lambda: GuardConfig(levels={"MANUAL": 5}),
            "levels[MANUAL]=5 must be 1, 2, 3 or 4",
        ),
        (
            lambda: GuardConfig(levels={"SLOW": 1}),
            "levels='SLOW' is not a rollback trigger (ACCURACY, ERROR_RATE, LATENCY, MANUAL, "
            "RESOURCE)",
        ),
        (
            lambda: GuardConfig(window=timedelta(seconds=45)),
            "window=datetime.timedelta(seconds=45) must be a positive multiple of bucket",
        ),
        (
            lambda: GuardConfig(min_samples=0),
            "min_samples=0 must be a whole number >= 1",
        ),
        (
            lambda: ManualStop("alice", " ", T0),
            "reason=' ' must be a non-empty string",
        ),
    ],
)
def test_bad_input_names_the_field_and_value(build: object, message: str) -> None:
    with pytest.raises(InvalidField) as caught:
        build()  # type: ignore[operator]
    assert str(caught.value) == message


def test_requests_of_another_service_are_refused() -> None:
    guard = _guard()
    other = VariantRequest("pricing", "/x", 1.0, 200, T0, "candidate")
    with pytest.raises(InvalidField, match=r"^service='pricing' is not the watched trading-api$"):
        guard.observe(other)
    assert guard.config.levels == dict.fromkeys(sorted(ROLLBACK_TRIGGERS), 1)
    assert GuardConfig().latency_increase_ms == Decimal(100)
