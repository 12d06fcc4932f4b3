"""The ``ledger.events`` message: one ledger event as JSON, checked field by field.

Each message carries the event's position, its hash and the hash it links to, so a
consumer can check continuity (``streams.relay.ContinuityChecker``) without the
database. The payload is the decoded event state as ``regledger events --format json``
renders it (``console.browse.plain``: decimals, ids and times as strings)::

    {"position": 41, "hash": "<64 hex>", "prev_hash": "<64 hex>",
     "topic": "domain.trading:Execution.Recorded",
     "originator_id": "3d8f9cb5-...", "originator_version": 1,
     "recorded_at": "2026-03-02T07:09:36.632000Z", "payload": {...}}

Pure (no broker, no Faust): a malformed message raises :class:`StreamCodecError`
naming the field and the value, and the consumer decides where it goes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger.canonical import GENESIS_PREV_HASH, datetime_to_micros, micros_to_datetime
from ledger.chain import LedgerRecord
from projections.core import plain

__all__ = [
    "FIELDS",
    "GENESIS_PREV_HASH_HEX",
    "LedgerMessage",
    "StreamCodecError",
    "decode_ledger_event",
    "encode_ledger_event",
    "encode_message",
]

GENESIS_PREV_HASH_HEX = GENESIS_PREV_HASH.hex()
FIELDS = (
    "position", "hash", "prev_hash", "topic", "originator_id", "originator_version",
    "recorded_at", "payload",
)  # fmt: skip
_MAX_INT64 = 2**63 - 1
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TOPIC = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*")
_RECORDED_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


class StreamCodecError(ValueError):
    """A ``ledger.events`` message is malformed; ``field`` and ``value`` say where.

    >>> str(StreamCodecError("hash", "xyz", "must be 64 lowercase hex digits"))
    "ledger.events message: field 'hash' = 'xyz': must be 64 lowercase hex digits"
    """

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"ledger.events message: field {field!r} = {shown}: {reason}")


@dataclass(frozen=True)
class LedgerMessage:
    """One ledger event as the ``ledger.events`` topic carries it."""

    position: int
    hash: str  # 64 lowercase hex digits
    prev_hash: str
    topic: str
    originator_id: str
    originator_version: int
    recorded_at: datetime  # UTC, microseconds
    payload: dict[str, Any] = field(hash=False)

    @property
    def recorded_at_us(self) -> int:
        return datetime_to_micros(self.recorded_at)

    @classmethod
    def of(cls, record: LedgerRecord, payload: Mapping[str, Any]) -> LedgerMessage:
        """The message of a ledger row and its decoded state (made JSON-safe here)."""
        return cls(
            position=record.position,
            hash=record.hash.hex(),
            prev_hash=record.prev_hash.hex(),
            topic=record.topic,
            originator_id=record.originator_id,
            originator_version=record.originator_version,
            recorded_at=micros_to_datetime(record.recorded_at_us),
            payload=plain(dict(payload)),
        )


def encode_message(message: LedgerMessage) -> bytes:
    """UTF-8 JSON, no whitespace, the fields in schema order."""
    recorded = message.recorded_at.astimezone(UTC).isoformat(timespec="microseconds")
    document = {
        "position": message.position,
        "hash": message.hash,
        "prev_hash": message.prev_hash,
        "topic": message.topic,
        "originator_id": message.originator_id,
        "originator_version": message.originator_version,
        "recorded_at": recorded.replace("+00:00", "Z"),
        "payload": message.payload,
    }
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def encode_ledger_event(record: LedgerRecord, payload: Mapping[str, Any]) -> bytes:
    """The message of one ledger row; ``payload`` is its decoded state
    (``projections.core.decoder().decode(record.state)``)."""
    return encode_message(LedgerMessage.of(record, payload))


def decode_ledger_event(data: bytes) -> LedgerMessage:
    """Parse and check one message; raises :class:`StreamCodecError` naming the field.

    >>> decode_ledger_event(b'{"position": 41}')
    Traceback (most recent call last):
    ...
    streams.codecs.StreamCodecError: ledger.events message: field 'hash' = None: is missing
    """
    document = _parse(data)
    if not isinstance(document, dict):
        raise StreamCodecError(
            "message", document, f"must be a JSON object with the fields {', '.join(FIELDS)}"
        )
    for name in FIELDS:
        if name not in document:
            raise StreamCodecError(name, None, "is missing")
    for name in document:
        if name not in FIELDS:
            raise StreamCodecError(
                name, document[name], f"is not a field of the schema ({', '.join(FIELDS)})"
            )
    return LedgerMessage(
        position=_integer(document, "position", 0, _MAX_INT64),
        hash=_hex64(document, "hash"),
        prev_hash=_hex64(document, "prev_hash"),
        topic=_text(document, "topic", _TOPIC, "must be an event topic MODULE:Class.Event"),
        originator_id=_text(document, "originator_id", None, "must be a non-empty string"),
        originator_version=_integer(document, "originator_version", 0, _MAX_INT64),
        recorded_at=_recorded_at(document),
        payload=_payload(document),
    )


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StreamCodecError("message", data, f"is not UTF-8 ({exc.reason})") from None
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except _DuplicateKey as exc:
        raise StreamCodecError(
            "message", exc.key, "has this key twice in one object; keys must be unique"
        ) from None
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise StreamCodecError("message", text, f"is not JSON ({exc})") from None


def _integer(document: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = document[name]
    if type(value) is not int or not low <= value <= high:
        raise StreamCodecError(name, value, f"must be an integer from {low} to 2**63-1")
    return value


def _hex64(document: Mapping[str, Any], name: str) -> str:
    value = document[name]
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise StreamCodecError(name, value, "must be 64 lowercase hex digits")
    return value


def _text(
    document: Mapping[str, Any], name: str, pattern: re.Pattern[str] | None, reason: str
) -> str:
    value = document[name]
    if not isinstance(value, str) or not value:
        raise StreamCodecError(name, value, reason)
    if pattern is not None and not pattern.fullmatch(value):
        raise StreamCodecError(name, value, reason)
    return value


def _recorded_at(document: Mapping[str, Any]) -> datetime:
    value = document["recorded_at"]
    reason = "must be ISO 8601 UTC with microseconds, e.g. 2026-03-02T07:09:36.632000Z"
    if not isinstance(value, str) or not _RECORDED_AT.fullmatch(value):
        raise StreamCodecError("recorded_at", value, reason)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:  # e.g. month 13: the pattern matched, the calendar did not
        raise StreamCodecError("recorded_at", value, reason) from None


def _payload(document: Mapping[str, Any]) -> dict[str, Any]:
    value = document["payload"]
    if not isinstance(value, dict):
        raise StreamCodecError("payload", value, "must be a JSON object (the event's state)")
    return value
