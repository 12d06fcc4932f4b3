"""A canary to roll back: the fixture the guard's tests share."""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.application import AuditTrail


def deploy_canary(trail: AuditTrail, *, at: datetime, baseline: str, canary: str) -> None:
    """trading-api 4.1.0 (change ``baseline``) requested, approved, started and promoted
    the day before ``at``, then 4.2.0 (change ``canary``) as a CANARY, approved and started
    at ``at``: seven events."""
    previous = trail.request_deployment(
        change_ticket=baseline, service="trading-api", version="4.1.0", commit="a1",
        strategy="ROLLING", actor="alice", occurred_at=at - timedelta(days=1),
    )  # fmt: skip
    for step, actor in (("approve", "bob"), ("start", "alice"), ("promote", "alice")):
        getattr(trail, f"{step}_deployment")(
            previous, actor=actor, occurred_at=at - timedelta(hours=20)
        )
    started = trail.request_deployment(
        change_ticket=canary, service="trading-api", version="4.2.0", commit="b2",
        strategy="CANARY", actor="alice", occurred_at=at - timedelta(hours=1),
    )  # fmt: skip
    trail.approve_deployment(started, actor="bob", occurred_at=at - timedelta(minutes=30))
    trail.start_deployment(started, actor="alice", occurred_at=at)
