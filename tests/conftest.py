"""Fixtures: every backend-parametrized test runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import HealthCheck, settings

from ledger import Settings, open_store
from ledger.recorders import ChainedApplicationRecorder
from ledger.store import ChainStore
from tests.support.databases import ledger_url

# Property tests check values, not speed: on a loaded 2-CPU machine (the benches, a
# PostgreSQL server and a broker beside the suite) Hypothesis's timing checks fail spuriously.
settings.register_profile("regledger", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("regledger")

# A topic that resolves to a real event class, as the recorder requires.
TOPIC = "eventsourcing.domain:Aggregate.Created"


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty ledger database of the parametrized backend."""
    with ledger_url(backend, tmp_path) as database_url:
        yield database_url


@pytest.fixture
def store(url: str) -> Iterator[ChainStore]:
    with open_store(Settings(database_url=url)) as opened:
        yield opened


@pytest.fixture
def recorder(store: ChainStore) -> ChainedApplicationRecorder:
    return ChainedApplicationRecorder(store)


def make_events(count: int, *, per_aggregate: int = 5, size: int = 64) -> list[StoredEvent]:
    """``count`` valid events, ``per_aggregate`` consecutive versions per fresh aggregate."""
    events: list[StoredEvent] = []
    originator = uuid.uuid4()
    for i in range(count):
        if i % per_aggregate == 0:
            originator = uuid.uuid4()
        state = (f'{{"n":{i},"pad":"' + "x" * max(0, size - 20) + '"}').encode()
        events.append(StoredEvent(originator, i % per_aggregate + 1, TOPIC, state))
    return events


@pytest.fixture
def events() -> Callable[..., list[StoredEvent]]:
    return make_events
