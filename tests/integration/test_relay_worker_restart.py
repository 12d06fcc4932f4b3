"""``regledger worker relay`` killed (SIGKILL) while the ledger grows, then started again:
``ledger.events`` holds every position, in order, links checked, duplicates identical."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.application import AuditTrail
from ledger import Settings, open_store
from ledger.factory import application_env
from streams.broker import bundled_broker
from streams.codecs import decode_ledger_event
from streams.relay import ContinuityChecker
from streams.topics import LEDGER_EVENTS, ensure_topics
from tests.support.databases import ledger_url
from tests.support.stream_topics import read_topic, start_worker, until

pytestmark = pytest.mark.slow
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def broker() -> Iterator[str]:
    with bundled_broker() as url:
        yield url


def _record(url: str, first: int, count: int) -> None:
    trail = AuditTrail(env=application_env(Settings(database_url=url)))
    try:
        for i in range(first, first + count):
            trail.record_user_action(
                action_id=f"UA-{i}", action="LOGIN", target="console", details={},
                actor=f"user-{i % 7}", occurred_at=T0 + timedelta(seconds=i),
            )  # fmt: skip
    finally:
        trail.close()


def test_a_killed_relay_worker_resumes_without_a_gap(broker: str, tmp_path: Path) -> None:
    ensure_topics(broker)
    with ledger_url("postgres", tmp_path) as url:
        env = {**os.environ, "REGLEDGER_DATABASE_URL": url, "REGLEDGER_BROKER_URL": broker}
        log = tmp_path / "relay.log"
        _record(url, 0, 300)
        worker = start_worker("relay", env, log)
        try:
            until(lambda: len(read_topic(broker, LEDGER_EVENTS)) >= 300, "the first events")
            _record(url, 300, 200)  # appended while the worker follows the ledger
            until(lambda: len(read_topic(broker, LEDGER_EVENTS)) > 300, "a followed append")
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
        _record(url, 500, 200)  # appended while no relay runs
        worker = start_worker("relay", env, log)
        try:
            until(
                lambda: {decode_ledger_event(r.value).position
                         for r in read_topic(broker, LEDGER_EVENTS)} >= set(range(700)),
                "every position",
            )  # fmt: skip
        finally:
            worker.send_signal(signal.SIGINT)
            worker.wait(timeout=60)
        assert worker.returncode == 0, log.read_text()
        with open_store(Settings(database_url=url)) as store:
            head = store.max_position()
            records = list(store.select_records(0, None, (), 1_000))

    assert head == 699  # the ledger itself: each action once
    messages = [decode_ledger_event(r.value) for r in read_topic(broker, LEDGER_EVENTS)]
    checker = ContinuityChecker()
    new = list(checker.new(messages))  # raises on a gap, a broken link or a conflict
    assert [m.position for m in new] == list(range(700))
    assert [m.hash for m in new] == [r.hash.hex() for r in records]
    assert len(messages) >= 700  # a batch sent but not yet recorded as sent goes out again
