"""The hash chain: sealing a batch onto the head, and walking a stream for its first fault.

Both are pure: recorders feed them rows and persist what they return; ``verify``
streams links through :func:`first_fault` in constant memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import NamedTuple, Protocol

from .canonical import GENESIS_PREV_HASH, HEAD, PREV_LEN, event_message

__all__ = [
    "ChainFault",
    "ChainHead",
    "FaultKind",
    "LedgerRecord",
    "Link",
    "Sealable",
    "SealedBatch",
    "VerifiedSpan",
    "diagnose_mismatch",
    "recorded_position",
    "first_fault",
    "links_of",
    "seal",
]

_sha256 = hashlib.sha256


class LedgerRecord(NamedTuple):
    """One row of ``ledger_events``."""

    position: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes
    recorded_at_us: int
    prev_hash: bytes
    hash: bytes

    def recompute_hash(self, position: int | None = None) -> bytes:
        """The hash this row's content gives, optionally as if stored at ``position``."""
        return _sha256(
            event_message(
                self.position if position is None else position,
                self.originator_id,
                self.originator_version,
                self.topic,
                self.state,
                self.recorded_at_us,
                self.prev_hash,
            )
        ).digest()


# Builds a LedgerRecord without its Python-level __new__: one is made per sealed event.
_record: Callable[[tuple[int, str, int, str, bytes, int, bytes, bytes]], LedgerRecord] = partial(
    tuple.__new__, LedgerRecord
)

# What the walk needs of a stored row: (position, recorded_at_us, prev_hash, hash,
# computed_hash). A plain tuple, not a NamedTuple: one is built per row on the hot path.
Link = tuple[int, int, bytes, bytes, bytes]


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where the next event goes: its position, the hash it links to, the last time."""

    next_position: int = 0
    last_hash: bytes = GENESIS_PREV_HASH
    last_recorded_at_us: int = 0


@dataclass(frozen=True, slots=True)
class SealedBatch:
    """A batch chained onto a head: its rows and the new head."""

    records: list[LedgerRecord]
    head: ChainHead


class Sealable(Protocol):
    """What sealing needs of an event (``validation.PreparedEvent`` is one)."""

    @property
    def originator_id(self) -> str: ...
    @property
    def originator_version(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def state(self) -> bytes: ...
    @property
    def body(self) -> bytes: ...


def seal(head: ChainHead, events: Iterable[Sealable], recorded_at_us: int) -> SealedBatch:
    """Chain ``events`` onto ``head``: positions, links and hashes.

    Every event of a batch shares one ``recorded_at``, never earlier than the head's,
    so ``recorded_at`` never decreases along the chain even if a clock steps back.

    >>> from ledger.validation import prepare_batch
    >>> from eventsourcing.persistence import StoredEvent
    >>> events = prepare_batch([StoredEvent("a", 1, "t", b""), StoredEvent("a", 2, "t", b"")],
    ...                        max_event_bytes=9, known_topics=None)
    >>> batch = seal(ChainHead(), events, 5)
    >>> [r.position for r in batch.records], batch.head.next_position
    ([0, 1], 2)
    """
    recorded = max(recorded_at_us, head.last_recorded_at_us)
    prev = head.last_hash
    position = head.next_position
    records: list[LedgerRecord] = []
    append = records.append
    pack = HEAD.pack
    for e in events:
        version = e.originator_version
        digest = _sha256(
            b"".join((pack(8, position, 8, version, 8, recorded), e.body, PREV_LEN, prev))
        ).digest()
        append(_record((position, e.originator_id, version, e.topic, e.state, recorded,
                        prev, digest)))  # fmt: skip
        prev = digest
        position += 1
    return SealedBatch(records, ChainHead(position, prev, recorded))


def links_of(records: Iterable[LedgerRecord]) -> Iterator[Link]:
    """Links of rows read column by column (the portable path; PostgreSQL has a faster one)."""
    for r in records:
        yield (r.position, r.recorded_at_us, r.prev_hash, r.hash, r.recompute_hash())


class FaultKind(StrEnum):
    """What is wrong at the first bad position."""

    GAP = "gap"
    HASH_MISMATCH = "hash_mismatch"
    BROKEN_LINK = "broken_link"
    REORDERED = "reordered"
    TIME_REGRESSED = "time_regressed"


@dataclass(frozen=True, slots=True)
class ChainFault:
    """The first position at which the chain does not hold, and why."""

    position: int
    kind: FaultKind
    detail: str


@dataclass(frozen=True, slots=True)
class VerifiedSpan:
    """What a walk covered: ``count`` intact events from ``first_position``, ending at ``head``."""

    first_position: int
    count: int
    head: ChainHead


def first_fault(
    links: Iterable[Link],
    start: ChainHead,
    *,
    end: int | None = None,
    diagnose: Callable[[int], ChainFault] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[ChainFault | None, VerifiedSpan]:
    """Walk ``links`` (ascending positions) from ``start``; return the first fault found.

    ``start`` is the head before the first link: position ``n`` must link to the hash
    of ``n - 1``. ``end``, when given, is the position the walk must reach (exclusive):
    rows missing before it are a gap. ``diagnose(position)`` explains a hash mismatch
    (altered content, or a row moved from elsewhere); ``progress`` is called with the
    number of links checked so far every 16,384 links.
    """
    expected = start.next_position
    prev_hash = start.last_hash
    prev_time = start.last_recorded_at_us
    fault: ChainFault | None = None
    for position, recorded_at_us, link_hash, stored_hash, computed in links:
        if position != expected:
            fault = ChainFault(
                expected,
                FaultKind.GAP,
                f"position {expected} is missing: the next stored position is {position}",
            )
            break
        if computed != stored_hash:
            fault = (
                diagnose(position)
                if diagnose is not None
                else _mismatch(position, stored_hash, computed)
            )
            break
        if link_hash != prev_hash:
            fault = ChainFault(
                expected,
                FaultKind.BROKEN_LINK,
                f"prev_hash {bytes(link_hash).hex()} is not the hash of position "
                f"{expected - 1} ({bytes(prev_hash).hex()})",
            )
            break
        if recorded_at_us < prev_time:
            fault = ChainFault(
                expected,
                FaultKind.TIME_REGRESSED,
                f"recorded_at {recorded_at_us} µs is earlier than position "
                f"{expected - 1}'s {prev_time} µs",
            )
            break
        prev_hash = stored_hash
        prev_time = recorded_at_us
        expected += 1
        if progress is not None and not expected & 0x3FFF:
            progress(expected - start.next_position)
    if fault is None and end is not None and expected < end:
        fault = ChainFault(
            expected,
            FaultKind.GAP,
            f"positions {expected} to {end - 1} are missing",
        )
    count = expected - start.next_position
    return fault, VerifiedSpan(
        start.next_position, count, ChainHead(expected, bytes(prev_hash), prev_time)
    )


def diagnose_mismatch(
    record: LedgerRecord,
    locate_hash: Callable[[bytes], int | None],
    locate_successor: Callable[[bytes], int | None] | None = None,
    record_at: Callable[[int], LedgerRecord | None] | None = None,
) -> ChainFault:
    """Tell a row moved from elsewhere in the log from a row whose content was altered.

    A moved row still hashes correctly at the position it was recorded at; see
    :func:`recorded_position` for the candidates tried (docs/FORMAT.md, section 4).
    """
    origin = recorded_position(record, locate_hash, locate_successor, record_at)
    if origin is not None and origin != record.position:
        return ChainFault(
            record.position,
            FaultKind.REORDERED,
            f"the event stored at position {record.position} was recorded at position "
            f"{origin}: rows were inserted, removed or moved",
        )
    return _mismatch(record.position, record.hash, record.recompute_hash())


def recorded_position(
    record: LedgerRecord,
    locate_hash: Callable[[bytes], int | None],
    locate_successor: Callable[[bytes], int | None] | None = None,
    record_at: Callable[[int], LedgerRecord | None] | None = None,
    depth: int = 2,
) -> int | None:
    """The position ``record`` was recorded at, if a candidate rehashes to its hash.

    Candidates, in order: one past its predecessor as stored now (the row whose hash
    is its ``prev_hash``; 0 for a genesis link); one past where that predecessor was
    recorded, when the predecessor moved too (found the same way, ``depth`` levels
    deep); one before its successor (the row whose ``prev_hash`` is its hash).
    """
    candidates: list[int] = []
    if record.prev_hash == GENESIS_PREV_HASH:
        candidates.append(0)
    else:
        predecessor = locate_hash(record.prev_hash)
        if predecessor is not None:
            candidates.append(predecessor + 1)
            moved = None if record_at is None or depth == 0 else record_at(predecessor)
            if moved is not None and moved.recompute_hash() != moved.hash:
                origin = recorded_position(
                    moved, locate_hash, locate_successor, record_at, depth - 1
                )
                if origin is not None:
                    candidates.append(origin + 1)
    if locate_successor is not None:
        successor = locate_successor(record.hash)
        if successor is not None:
            candidates.append(successor - 1)
    for candidate in candidates:
        if record.recompute_hash(candidate) == record.hash:
            return candidate
    return None


def _mismatch(position: int, stored: bytes, computed: bytes) -> ChainFault:
    return ChainFault(
        position,
        FaultKind.HASH_MISMATCH,
        f"stored hash {bytes(stored).hex()} does not match the content's hash "
        f"{bytes(computed).hex()}: the row was altered (or moved from a position that "
        "could not be identified)",
    )
