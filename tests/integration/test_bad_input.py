"""Bad input gets a clear error naming the event, field and value; nothing is stored."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from ledger import InvalidEventError
from ledger.recorders import ChainedApplicationRecorder
from ledger.store import ChainStore
from tests.conftest import TOPIC, make_events

ONE_MIB = 1_048_576


def _bad(**override: Any) -> StoredEvent:
    fields: dict[str, Any] = {
        "originator_id": uuid.uuid4(),
        "originator_version": 1,
        "topic": TOPIC,
        "state": b"{}",
    }
    fields.update(override)
    return StoredEvent(**fields)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (
            _bad(originator_id=42),
            "event 3 of the batch: originator_id=42 must be a UUID or a string",
        ),
        (
            _bad(originator_id=""),
            "event 3 of the batch: originator_id='' must be 1 to 255 bytes of UTF-8 without NUL",
        ),
        (
            _bad(originator_version="2"),
            "event 3 of the batch: originator_version='2' must be an integer from 0 to 2**63-1",
        ),
        (
            _bad(originator_version=True),
            "event 3 of the batch: originator_version=True must be an integer from 0 to 2**63-1",
        ),
        (
            _bad(originator_version=-1),
            "event 3 of the batch: originator_version=-1 must be an integer from 0 to 2**63-1",
        ),
        (
            _bad(topic="domain.orders:NoSuchEvent"),
            "event 3 of the batch: topic='domain.orders:NoSuchEvent' does not name an importable "
            "event class, so it could never be decoded; record events through the domain "
            "application",
        ),
        (_bad(topic=None), "event 3 of the batch: topic=None must be a string of 1 to 512 bytes"),
        (_bad(state="{}"), "event 3 of the batch: state='{}' must be bytes"),
        (
            _bad(state=b"x" * (ONE_MIB + 1)),
            "event 3 of the batch: state='<1,048,577 bytes>' exceeds "
            "REGLEDGER_MAX_EVENT_BYTES=1,048,576",
        ),
    ],
    ids=[
        "id-int",
        "id-empty",
        "version-str",
        "version-bool",
        "version-negative",
        "topic-unknown",
        "topic-none",
        "state-str",
        "state-oversize",
    ],
)
def test_malformed_event_rejects_the_whole_batch(
    recorder: ChainedApplicationRecorder, store: ChainStore, event: StoredEvent, message: str
) -> None:
    recorder.insert_events(make_events(5))
    # Three good events, then the bad one: the good ones must not be stored either.
    batch = [*make_events(3), event]
    with pytest.raises(InvalidEventError) as caught:
        recorder.insert_events(batch)
    assert str(caught.value) == f"{message}; nothing of the batch was stored"
    assert caught.value.index == 3
    assert store.max_position() == 4


def test_version_conflict_rejects_the_whole_batch(
    recorder: ChainedApplicationRecorder, store: ChainStore
) -> None:
    first = make_events(5)
    recorder.insert_events(first)
    # A new event plus one that repeats an already recorded (originator_id, version).
    with pytest.raises(IntegrityError, match="nothing of the batch was stored"):
        recorder.insert_events([*make_events(2), first[2]])
    assert store.max_position() == 4


def test_duplicate_within_a_batch_is_rejected_before_the_database(
    recorder: ChainedApplicationRecorder, store: ChainStore
) -> None:
    event = make_events(1)[0]
    with pytest.raises(IntegrityError) as caught:
        recorder.insert_events([event, event])
    assert str(caught.value) == (
        f"event 1 of the batch repeats originator_id='{event.originator_id}' "
        "originator_version=1; nothing of the batch was stored"
    )
    assert store.max_position() is None


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (
            _bad(topic=["a", "list"]),
            "event 0 of the batch: topic=['a', 'list'] must be a string of 1 to 512 bytes",
        ),
        (
            _bad(originator_id="desk-\ud800"),
            "event 0 of the batch: originator_id='desk-\\ud800' is not valid Unicode text "
            "(it holds a lone surrogate)",
        ),
        (
            _bad(topic=TOPIC + "\udfff"),
            f"event 0 of the batch: topic='{TOPIC}\\udfff' is not valid Unicode text "
            "(it holds a lone surrogate)",
        ),
    ],
    ids=["topic-unhashable", "id-lone-surrogate", "topic-lone-surrogate"],
)
def test_values_that_cannot_be_encoded_are_named(
    recorder: ChainedApplicationRecorder, store: ChainStore, event: StoredEvent, message: str
) -> None:
    recorder.insert_events(make_events(1))  # the topic cache is warm: the fast path runs
    with pytest.raises(InvalidEventError) as caught:
        recorder.insert_events([event])
    assert str(caught.value) == f"{message}; nothing of the batch was stored"
    assert store.max_position() == 0


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_timescaledb_path_checks_versions_under_the_lock(
    recorder: ChainedApplicationRecorder, store: ChainStore
) -> None:
    # On TimescaleDB the hypertable has no unique (originator_id, version) index; the
    # recorder checks under the append lock instead. Exercise that path here: it
    # must refuse the duplicate itself, before the plain-PostgreSQL constraint would.
    store.timescale = True  # type: ignore[attr-defined]
    first = make_events(5)
    assert recorder.insert_events(first) == [1, 2, 3, 4, 5]
    with pytest.raises(IntegrityError) as caught:
        recorder.insert_events([*make_events(2), first[3]])
    assert str(caught.value) == (
        f"originator_id='{first[3].originator_id}' originator_version=4 is already "
        "recorded; nothing of the batch was stored"
    )
    with pytest.raises(InvalidEventError):
        recorder.insert_events([_bad(state="not bytes")])
    assert store.max_position() == 4
    assert recorder.insert_events(make_events(2)) == [6, 7]
