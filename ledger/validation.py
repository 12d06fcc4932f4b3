"""Checks an event batch before anything touches the database.

A batch is stored whole or not at all, so the first malformed event rejects it,
with an error naming the event, the field and the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.utils import TopicError, resolve_topic

from .canonical import body_frames, originator_id_text
from .errors import InvalidEventError

__all__ = ["MAX_ID_BYTES", "MAX_TOPIC_BYTES", "PreparedEvent", "prepare_batch"]

MAX_ID_BYTES = 255
MAX_TOPIC_BYTES = 512
_MAX_INT64 = 2**63 - 1


class PreparedEvent(NamedTuple):
    """A checked event, with its position-independent frames already encoded."""

    originator_id: str
    originator_version: int
    topic: str
    state: bytes
    body: bytes  # canonical.body_frames(originator_id, topic, state)


def prepare_batch(
    stored_events: Sequence[StoredEvent],
    *,
    max_event_bytes: int,
    known_topics: set[str] | None,
) -> list[PreparedEvent]:
    """Validate ``stored_events`` and return them ready to seal.

    ``known_topics`` caches topics that resolved to a class; ``None`` turns the
    topic check off (only eventsourcing's own contract tests, whose topics are
    placeholders, do that).

    >>> prepare_batch([StoredEvent("a", 1, "t", b"x")], max_event_bytes=9, known_topics=None)[0][:4]
    ('a', 1, 't', b'x')
    """
    prepared: list[PreparedEvent] = []
    seen: set[tuple[str, int]] = set()
    for index, event in enumerate(stored_events):
        if not isinstance(event, StoredEvent):
            raise InvalidEventError(index, "event", event, "is not an eventsourcing StoredEvent")
        oid, oid_bytes = _originator_id(index, event.originator_id)
        version = event.originator_version
        if type(version) is not int or not 0 <= version <= _MAX_INT64:
            raise InvalidEventError(
                index, "originator_version", version, "must be an integer from 0 to 2**63-1"
            )
        topic, topic_bytes = _topic(index, event.topic, known_topics)
        state = event.state
        if not isinstance(state, bytes):
            raise InvalidEventError(index, "state", state, "must be bytes")
        if len(state) > max_event_bytes:
            raise InvalidEventError(
                index,
                "state",
                f"<{len(state):,} bytes>",
                f"exceeds REGLEDGER_MAX_EVENT_BYTES={max_event_bytes:,}",
            )
        key = (oid, version)
        if key in seen:
            raise IntegrityError(
                f"event {index} of the batch repeats originator_id={oid!r} "
                f"originator_version={version}; nothing of the batch was stored"
            )
        seen.add(key)
        body = body_frames(oid_bytes, topic_bytes, state)
        prepared.append(PreparedEvent(oid, version, topic, state, body))
    return prepared


def _utf8(index: int, field: str, text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise InvalidEventError(
            index, field, text, "is not valid Unicode text (it holds a lone surrogate)"
        ) from None


def _originator_id(index: int, value: object) -> tuple[str, bytes]:
    if not isinstance(value, UUID | str):
        raise InvalidEventError(index, "originator_id", value, "must be a UUID or a string")
    text = originator_id_text(value)
    encoded = _utf8(index, "originator_id", text)
    if not encoded or len(encoded) > MAX_ID_BYTES or b"\x00" in encoded:
        raise InvalidEventError(
            index,
            "originator_id",
            value,
            f"must be 1 to {MAX_ID_BYTES} bytes of UTF-8 without NUL",
        )
    return text, encoded


def _topic(index: int, value: object, known_topics: set[str] | None) -> tuple[str, bytes]:
    if known_topics is not None and type(value) is str and value in known_topics:
        return value, value.encode()  # checked when it was added
    if not isinstance(value, str):
        raise InvalidEventError(
            index, "topic", value, f"must be a string of 1 to {MAX_TOPIC_BYTES} bytes"
        )
    encoded = _utf8(index, "topic", value)
    if not encoded or len(encoded) > MAX_TOPIC_BYTES:
        raise InvalidEventError(
            index, "topic", value, f"must be a string of 1 to {MAX_TOPIC_BYTES} bytes"
        )
    if known_topics is None:
        return value, encoded
    try:
        resolved = resolve_topic(value)
    except (TopicError, ImportError, AttributeError, ValueError):
        resolved = None
    if not isinstance(resolved, type):
        raise InvalidEventError(
            index,
            "topic",
            value,
            "does not name an importable event class, so it could never be decoded; "
            "record events through the domain application",
        )
    known_topics.add(value)
    return value, encoded
