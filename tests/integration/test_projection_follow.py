"""A following runner applies what other writers append, as they append it, and stops."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from console.trail import open_trail
from ledger import ChainStore, Settings
from projections.catalogue import by_name
from projections.runner import BatchReport, ProjectionRunner


def _wait_for(condition: threading.Event, seconds: float = 10.0) -> None:
    assert condition.wait(seconds), f"not within {seconds} s"


def test_follow_applies_each_append_then_stops(store: ChainStore, url: str) -> None:
    (view,) = by_name(["user_actions"])
    reports: list[BatchReport] = []
    seen = threading.Event()
    stop = threading.Event()

    def on_batch(report: BatchReport) -> None:
        reports.append(report)
        seen.set()

    with ProjectionRunner(store, [view]) as runner:
        follower = threading.Thread(target=runner.follow, args=(stop.is_set, on_batch, 0.05))
        follower.start()
        trail = open_trail(Settings(database_url=url))
        try:
            for number in range(3):
                seen.clear()
                trail.record_user_action(
                    action_id=f"A-{number}",
                    action="LOGIN",
                    target="console",
                    details={"via": "sso"},
                    actor="k.weber",
                    occurred_at=datetime(2026, 3, 2, 8, number, tzinfo=UTC),
                )
                _wait_for(seen)
        finally:
            trail.close()
            stop.set()
            follower.join(timeout=10)
        assert not follower.is_alive()
        status = runner.status()
    assert [(r.projections, r.first, r.last, r.rows) for r in reports] == [
        (("user_actions",), 0, 0, 1),
        (("user_actions",), 1, 1, 1),
        (("user_actions",), 2, 2, 1),
    ]
    assert [(s.name, s.position, s.head, s.lag) for s in status] == [("user_actions", 2, 2, 0)]


def test_follow_on_an_empty_ledger_applies_nothing_and_stops(store: ChainStore) -> None:
    reports: list[BatchReport] = []
    polls = iter(range(5))  # stopped() is asked before each wait: five polls, then stop
    with ProjectionRunner(store, by_name([])) as runner:
        runner.follow(lambda: next(polls, None) is None, reports.append, idle=0.01)
        assert reports == []
        assert {s.position for s in runner.status()} == {None}
