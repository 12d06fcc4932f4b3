"""A following runner applies what other writers append, as they append it, and stops; a
runner that meets an event it cannot decode stops there, naming it."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest
from eventsourcing.persistence import StoredEvent

from console.trail import open_trail
from ledger import ChainStore, Settings
from ledger.validation import BatchValidator
from projections.catalogue import by_name
from projections.core import ProjectionError
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


def test_an_undecodable_event_stops_the_runner_naming_its_position(store: ChainStore) -> None:
    validator = BatchValidator(max_event_bytes=1_048_576, known_topics=None)
    topic = "domain.activity:UserAction.Recorded"
    store.append([StoredEvent(uuid.uuid4(), 1, topic, b"{not json")], validator)
    (view,) = by_name(["user_actions"])
    with ProjectionRunner(store, [view]) as runner:
        with pytest.raises(ProjectionError) as caught:
            runner.run()
        assert [s.position for s in runner.status()] == [None]
    assert str(caught.value) == (
        "the event at position 0 (domain.activity:UserAction.Recorded) cannot be decoded: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1); "
        "run `regledger show 0`"
    )


def test_a_reset_forgets_the_position_on_both_backends(store: ChainStore) -> None:
    with store.view_session() as session:
        with session.transaction():
            assert session.advance("projection:probe", None, 41)
        assert session.tracked("projection:probe") == 41
        with session.transaction():
            session.reset("projection:probe")
        assert session.tracked("projection:probe") is None
