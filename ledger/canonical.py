"""Canonical encoding of a ledger event and its chain hash (docs/FORMAT.md, section 3).

Every field is framed the same way, ``F(x) = u32_be(len(x)) || x``; integers are
8-byte big-endian two's complement; text is UTF-8::

    message = F(position) || F(originator_version) || F(recorded_at_us)
              || F(originator_id) || F(topic) || F(state) || F(prev_hash)
    hash    = SHA-256(message)

The first event's ``prev_hash`` is 32 zero bytes. The framing is exactly how
PostgreSQL's binary COPY lays out those columns, so ``verify`` hashes a slice of
each COPY row without re-encoding it; an independent verifier needs nothing of
PostgreSQL to build the same bytes.

>>> event_hash(0, "a", 1, "t", b"", 0, GENESIS_PREV_HASH).hex()[:16]
'cb5e33ea55c3b82c'
"""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime, timedelta
from uuid import UUID

__all__ = [
    "GENESIS_PREV_HASH",
    "HASH_SIZE",
    "HEAD",
    "PREV_LEN",
    "body_frames",
    "datetime_to_micros",
    "event_hash",
    "event_message",
    "micros_to_datetime",
    "originator_id_text",
    "originator_id_value",
]

HASH_SIZE = 32
GENESIS_PREV_HASH = bytes(HASH_SIZE)
# F(position) F(originator_version) F(recorded_at): HEAD.pack(8, position, 8, version, 8, t).
HEAD = struct.Struct(">IqIqIq")
_LEN = struct.Struct(">I")
PREV_LEN = _LEN.pack(HASH_SIZE)  # the length word of F(prev_hash)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_sha256 = hashlib.sha256


def originator_id_text(originator_id: UUID | str) -> str:
    """The text form an originator id takes in the store and in the hash.

    >>> originator_id_text(UUID(int=1))
    '00000000-0000-0000-0000-000000000001'
    """
    return str(originator_id) if isinstance(originator_id, UUID) else originator_id


def originator_id_value(text: str) -> UUID | str:
    """The id as the application gave it: a UUID for the canonical UUID text form.

    >>> originator_id_value("00000000-0000-0000-0000-000000000001")
    UUID('00000000-0000-0000-0000-000000000001')
    >>> originator_id_value("desk-7")
    'desk-7'
    """
    if len(text) == 36 and text[8] == "-":
        try:
            value = UUID(text)
        except ValueError:
            return text
        if str(value) == text:
            return value
    return text


def body_frames(originator_id: bytes, topic: bytes, state: bytes) -> bytes:
    """``F(originator_id) || F(topic) || F(state)``: the part of the message that does not
    depend on where the event lands, so it can be built before the append lock is taken."""
    return b"".join(
        (_LEN.pack(len(originator_id)), originator_id, _LEN.pack(len(topic)), topic,
         _LEN.pack(len(state)), state)
    )  # fmt: skip


def event_message(
    position: int,
    originator_id: str,
    originator_version: int,
    topic: str,
    state: bytes,
    recorded_at_us: int,
    prev_hash: bytes,
) -> bytes:
    """The bytes that are hashed: head frames, body frames, then the framed ``prev_hash``."""
    return b"".join(
        (
            HEAD.pack(8, position, 8, originator_version, 8, recorded_at_us),
            body_frames(originator_id.encode(), topic.encode(), state),
            PREV_LEN,
            prev_hash,
        )
    )


def event_hash(
    position: int,
    originator_id: str,
    originator_version: int,
    topic: str,
    state: bytes,
    recorded_at_us: int,
    prev_hash: bytes,
) -> bytes:
    """SHA-256 of :func:`event_message`."""
    return _sha256(
        event_message(
            position, originator_id, originator_version, topic, state, recorded_at_us, prev_hash
        )
    ).digest()


def datetime_to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (exact, no float).

    >>> datetime_to_micros(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC))
    1767323045678901
    """
    if moment.tzinfo is None:
        raise ValueError(f"recorded_at={moment!r} has no time zone; give an aware UTC datetime")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def micros_to_datetime(micros: int) -> datetime:
    """The aware UTC datetime of a microsecond count since the Unix epoch.

    >>> micros_to_datetime(1767323045678901).isoformat()
    '2026-01-02T03:04:05.678901+00:00'
    """
    return _EPOCH + timedelta(microseconds=micros)
