"""Checks an event batch before anything touches the database.

A batch is stored whole or not at all, so the first malformed event rejects it,
with an error naming the event, the field and the value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.utils import TopicError, resolve_topic

from .canonical import body_frames, originator_id_text
from .errors import InvalidEventError

__all__ = ["MAX_ID_BYTES", "MAX_TOPIC_BYTES", "BatchValidator", "PreparedEvent", "prepare_batch"]

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


# Builds a PreparedEvent without its Python-level __new__: one is made per event.
_prepared: Callable[[tuple[str, int, str, bytes, bytes]], PreparedEvent] = partial(
    tuple.__new__, PreparedEvent
)


class BatchValidator:
    """Checks one batch, chunk by chunk, remembering what earlier chunks held.

    A store may validate a chunk while the database inserts the previous one; the
    first malformed event aborts the append, so nothing of the batch is stored.

    ``known_topics`` caches topics that resolved to a class across batches; ``None``
    turns the topic check off (only eventsourcing's own contract tests, whose
    topics are placeholders, do that).
    """

    def __init__(self, *, max_event_bytes: int, known_topics: set[str] | None) -> None:
        self.max_event_bytes = max_event_bytes
        self.known_topics = known_topics
        self._seen: set[tuple[str, int]] = set()
        self._ids: dict[UUID, tuple[str, bytes]] = {}  # an aggregate's events share its id

    def prepare(self, events: Sequence[StoredEvent], offset: int = 0) -> list[PreparedEvent]:
        """Validate ``events`` (at ``offset`` in the batch) and return them ready to seal."""
        prepared: list[PreparedEvent] = []
        seen = self._seen
        for index, event in enumerate(events, start=offset):
            if not isinstance(event, StoredEvent):
                raise InvalidEventError(
                    index, "event", event, "is not an eventsourcing StoredEvent"
                )
            raw_id = event.originator_id
            cached = self._ids.get(raw_id) if type(raw_id) is UUID else None
            if cached is None:
                cached = _originator_id(index, raw_id)
                if type(raw_id) is UUID:
                    self._ids[raw_id] = cached
            oid, oid_bytes = cached
            version = event.originator_version
            if type(version) is not int or not 0 <= version <= _MAX_INT64:
                raise InvalidEventError(
                    index, "originator_version", version, "must be an integer from 0 to 2**63-1"
                )
            topic, topic_bytes = _topic(index, event.topic, self.known_topics)
            state = event.state
            if not isinstance(state, bytes):
                raise InvalidEventError(index, "state", state, "must be bytes")
            if len(state) > self.max_event_bytes:
                raise InvalidEventError(
                    index,
                    "state",
                    f"<{len(state):,} bytes>",
                    f"exceeds REGLEDGER_MAX_EVENT_BYTES={self.max_event_bytes:,}",
                )
            key = (oid, version)
            if key in seen:
                raise IntegrityError(
                    f"event {index} of the batch repeats originator_id={oid!r} "
                    f"originator_version={version}; nothing of the batch was stored"
                )
            seen.add(key)
            body = body_frames(oid_bytes, topic_bytes, state)
            prepared.append(_prepared((oid, version, topic, state, body)))
        return prepared


def prepare_batch(
    stored_events: Sequence[StoredEvent],
    *,
    max_event_bytes: int,
    known_topics: set[str] | None,
) -> list[PreparedEvent]:
    """Validate a whole batch at once and return it ready to seal.

    >>> prepare_batch([StoredEvent("a", 1, "t", b"x")], max_event_bytes=9, known_topics=None)[0][:4]
    ('a', 1, 't', b'x')
    """
    validator = BatchValidator(max_event_bytes=max_event_bytes, known_topics=known_topics)
    return validator.prepare(stored_events)


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
