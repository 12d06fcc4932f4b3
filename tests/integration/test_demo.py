"""The seeded demo: deterministic, verifiable, and telling the expected story."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import BaseAggregate, CanInitAggregate
from eventsourcing.persistence import JSONTranscoder, StoredEvent

from console.demo import DemoSummary, run_demo
from console.trail import open_trail
from domain import identifiers
from domain.application import AuditTrail
from domain.base import AuditAggregate, AuditCreated
from ledger import LedgerRecord, Settings, open_store
from ledger.factory import application_env
from ledger.transcoder import LedgerTranscoder
from ledger.verify import verify_ledger
from tests.support.databases import ledger_url

# seed 7, one day: a change to the simulation must show up here
SEED_7_ONE_DAY = {
    "ComplianceCheck.Performed": 673,
    "Deployment.Approved": 2,
    "Deployment.Promoted": 2,
    "Deployment.Requested": 3,
    "Deployment.RetroactivelyApproved": 1,
    "Deployment.RolledBack": 1,
    "Deployment.Started": 3,
    "Execution.Amended": 1,
    "Execution.Cancelled": 1,
    "Execution.Recorded": 220,
    "MarketDataUsage.Used": 345,
    "ModelVersion.Registered": 2,
    "Order.Amended": 1,
    "Order.Cancelled": 1,
    "Order.Placed": 158,
    "RiskCalculation.Calculated": 34,
    "Rollback.Executed": 1,
    "ShadowComparison.Recorded": 1,
    "TradeDecision.Made": 345,
    "UserAction.Recorded": 15,
}


def _demo(url: str, *, seed: int = 7, days: int = 1) -> DemoSummary:
    trail = open_trail(Settings(database_url=url))
    try:
        return run_demo(trail, days=days, seed=seed)
    finally:
        trail.close()


def _records(url: str) -> list[LedgerRecord]:
    with open_store(Settings(database_url=url)) as store:
        return store.select_records(0, None, (), 1_000_000)


def _content(url: str) -> list[tuple[str, int, str, bytes]]:
    """Every row's content in position order; ``recorded_at`` (and so the hash) is the
    database clock's, not the simulation's."""
    return [(r.originator_id, r.originator_version, r.topic, r.state) for r in _records(url)]


def test_same_seed_same_events_other_seed_other_events(tmp_path: Path) -> None:
    logs = []
    for seed in (7, 7, 8):
        with ledger_url("sqlite", tmp_path) as url:
            _demo(url, seed=seed)
            logs.append(_content(url))
    first, again, other = logs
    assert len(first) == sum(SEED_7_ONE_DAY.values())
    assert first == again
    assert other != first


def test_lean_paths_record_eventsourcings_own_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger's transcoder and the audit aggregates' lean creation record, for a whole
    simulated day (every command, replays included), the bytes eventsourcing's own
    JSONTranscoder, ``BaseAggregate._create`` and ``CanInitAggregate.mutate`` record."""
    logs = []
    for lean in (True, False):
        with ledger_url("sqlite", tmp_path) as url, monkeypatch.context() as patch:
            env = application_env(Settings(database_url=url))
            if not lean:
                env["TRANSCODER_TOPIC"] = "eventsourcing.persistence:JSONTranscoder"
                patch.setattr(AuditAggregate, "_create", BaseAggregate.__dict__["_create"])
                patch.setattr(AuditCreated, "mutate", CanInitAggregate.mutate)
            trail = AuditTrail(env=env)
            try:
                transcoder = trail.mapper.transcoder
                assert type(transcoder) is (LedgerTranscoder if lean else JSONTranscoder)
                run_demo(trail, days=1, seed=7)
            finally:
                trail.close()
            logs.append(_content(url))
    lean_log, eventsourcing_log = logs
    assert len(lean_log) == sum(SEED_7_ONE_DAY.values())
    assert lean_log == eventsourcing_log


def test_one_day_verifies_and_tells_the_story(url: str) -> None:
    progress: list[tuple[int, int]] = []
    trail = open_trail(Settings(database_url=url))
    try:
        summary = run_demo(trail, progress=lambda done, total: progress.append((done, total)))
        events: list[tuple[str, Any]] = [
            (
                r.topic.split(":", 1)[1],
                trail.mapper.to_domain_event(
                    StoredEvent(UUID(r.originator_id), r.originator_version, r.topic, r.state)
                ),
            )
            for r in _records(url)
        ]
    finally:
        trail.close()

    report = verify_ledger(Settings(database_url=url))
    assert report.ok and report.checked == summary.total_events == len(events)
    assert summary.events_by_type == SEED_7_ONE_DAY
    assert summary.events_by_type == dict(sorted(Counter(kind for kind, _ in events).items()))
    assert (summary.days, summary.seed, summary.rollbacks) == (1, 7, 1)
    assert progress[-1][0] == progress[-1][1] == len(progress)

    moments = [event.occurred_at for _, event in events]
    assert moments == sorted(moments)  # the simulated clock only moves forward
    assert all(event.timestamp == event.occurred_at for _, event in events)

    def of(kind: str) -> list[Any]:
        return [event for name, event in events if name == kind]

    (rolled_back,) = of("Deployment.RolledBack")
    (rollback,) = of("Rollback.Executed")
    assert (rolled_back.trigger, rolled_back.level) == ("LATENCY", 1)
    assert (rollback.trigger, rollback.level, rollback.service) == ("LATENCY", 1, "signal-engine")
    assert int(rollback.evidence["canary_p95_ms"]) - int(rollback.evidence["baseline_p95_ms"]) > 100
    requested = {e.originator_id: e for e in of("Deployment.Requested")}
    approved = {e.originator_id: e for e in of("Deployment.Approved")}
    assert requested[rolled_back.originator_id].strategy == "CANARY"
    assert approved[rolled_back.originator_id].actor != requested[rolled_back.originator_id].actor

    (retroactive,) = of("Deployment.RetroactivelyApproved")
    hotfix = requested[retroactive.originator_id]
    assert hotfix.emergency and retroactive.late is False
    assert retroactive.actor != hotfix.actor and retroactive.occurred_at <= retroactive.due

    checks = of("ComplianceCheck.Performed")
    assert any(not c.passed for c in checks)
    assert [c.control for c in checks][0] == "KILL_SWITCH" and checks[0].passed
    failed_orders = {c.client_order_id for c in checks if not c.passed}
    placed = {o.client_order_id for o in of("Order.Placed")}
    assert failed_orders and failed_orders.isdisjoint(placed)  # a failed control blocks it
    assert summary.failed_checks == len([c for c in checks if not c.passed])

    breaches = [r for r in of("RiskCalculation.Calculated") if r.breached]
    assert breaches and summary.risk_breaches == len(breaches)
    assert all(r.value > r.limit for r in breaches)

    executions = of("Execution.Recorded")
    (fx,) = [e for e in executions if e.venue == "XOFF"]
    assert identifiers.isin(fx.isin).startswith("EZ")
    assert (fx.cfi, fx.notional_currency_1, fx.notional_currency_2) == ("JFTXFP", "EUR", "USD")
    for execution in executions:
        for lei in (execution.executing_entity_lei, execution.buyer_lei, execution.seller_lei):
            identifiers.lei(lei)
    decisions = of("TradeDecision.Made")
    snapshots = {u.snapshot_hash for u in of("MarketDataUsage.Used")}
    assert decisions and all(d.lineage_hash in snapshots for d in decisions)
    (shadow,) = of("ShadowComparison.Recorded")
    assert shadow.samples == len(decisions) and 0.7 < shadow.agreement_rate < 0.9
