"""An unchanged eventsourcing Application and ProjectionRunner run on the ledger."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.projection import Projection, ProjectionRunner

from ledger import PERSISTENCE_MODULE, Settings
from ledger.recorders import ChainedTrackingRecorder
from ledger.store import ChainStore
from ledger.verify import verify_ledger


class Desk(Aggregate):
    """A trading desk whose limit changes are audited."""

    @event("Opened")
    def __init__(self, name: str) -> None:
        self.name = name
        self.limit = 0

    @event("LimitChanged")
    def change_limit(self, limit: int) -> None:
        self.limit = limit


class Desks(Application[UUID]):
    def open(self, name: str) -> UUID:
        desk = Desk(name)
        self.save(desk)
        return desk.id

    def change_limit(self, desk_id: UUID, limit: int) -> None:
        desk: Desk = self.repository.get(desk_id)
        desk.change_limit(limit)
        self.save(desk)


def _env(url: str) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": PERSISTENCE_MODULE, "REGLEDGER_DATABASE_URL": url}


def test_application_saves_and_rebuilds_aggregates(url: str) -> None:
    app = Desks(env=_env(url))
    desk_id = app.open("rates")
    app.change_limit(desk_id, 5_000_000)
    desk: Desk = app.repository.get(desk_id)
    assert (desk.name, desk.limit, desk.version) == ("rates", 5_000_000, 2)
    notifications = app.notification_log.select(start=1, limit=10)
    assert [n.id for n in notifications] == [1, 2]
    assert [n.topic.rsplit(".", 1)[1] for n in notifications] == ["Opened", "LimitChanged"]
    app.close()
    assert verify_ledger(Settings(database_url=url)).checked == 2


def test_concurrent_edit_of_one_aggregate_conflicts(url: str) -> None:
    # Two service instances load the same desk; the second save must be refused.
    first, second = Desks(env=_env(url)), Desks(env=_env(url))
    desk_id = first.open("fx")
    one: Desk = first.repository.get(desk_id)
    two: Desk = second.repository.get(desk_id)
    one.change_limit(1)
    two.change_limit(2)
    first.save(one)
    with pytest.raises(IntegrityError):
        second.save(two)
    assert first.repository.get(desk_id).limit == 1
    first.close()
    second.close()


class LimitChanges(ChainedTrackingRecorder):
    """A tiny view: the limits seen, with tracking recorded in the ledger database."""

    def __init__(self, store: ChainStore, **kwargs: Any) -> None:
        super().__init__(store, **kwargs)
        self.limits: list[int] = []
        self.seen = threading.Event()


class LimitChangesProjection(Projection[LimitChanges]):
    name = "limit_changes"
    topics = (Desk.LimitChanged.__module__ + ":Desk.LimitChanged",)

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.limits.append(domain_event.limit)
        self.view.insert_tracking(tracking)
        if len(self.view.limits) == 2:
            self.view.seen.set()


def test_projection_runner_follows_the_ledger(url: str) -> None:
    env = _env(url)
    app = Desks(env=env)
    desk_id = app.open("credit")
    app.change_limit(desk_id, 10)
    with ProjectionRunner(
        application_class=Desks,
        projection_class=LimitChangesProjection,
        view_class=LimitChanges,
        env=env,
    ) as runner:
        app.change_limit(desk_id, 20)  # appended while the runner is subscribed
        assert runner.view.seen.wait(timeout=10)
        assert runner.view.limits == [10, 20]
        assert runner.view.max_tracking_id("Desks") == 3
    # The runner builds the view through a factory of its own and never closes its
    # store: close it, or its pool's threads outlive the test.
    runner.view.store.close()
    app.close()
