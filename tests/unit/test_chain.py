"""Unit and property tests of the canonical encoding, sealing and the chain walk.

Pure: no database. Rows are ``LedgerRecord`` tuples as a store would return them;
tampering is simulated by editing those tuples the way someone with write access to
the table could (docs/FORMAT.md, sections 4 and 6).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st

from ledger.canonical import (
    GENESIS_PREV_HASH,
    body_frames,
    datetime_to_micros,
    event_hash,
    event_message,
    micros_to_datetime,
)
from ledger.chain import (
    ChainFault,
    ChainHead,
    FaultKind,
    LedgerRecord,
    SealedBatch,
    VerifiedSpan,
    diagnose_mismatch,
    first_fault,
    links_of,
    seal,
)
from ledger.postgres import copy_payload, copy_rows, parse_links
from ledger.validation import PreparedEvent

MAX_I64 = 2**63 - 1
YEAR_2100_US = 4_102_444_800_000_000
PG_EPOCH_OFFSET_US = 946_684_800_000_000
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER = b"\xff\xff"

# --- strategies ------------------------------------------------------------------------

ids = st.one_of(
    st.uuids().map(str),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=40),
)
topics = st.text(st.characters(codec="utf-8"), min_size=1, max_size=60)
states = st.binary(max_size=4096)
versions = st.integers(0, MAX_I64)
events = st.tuples(ids, versions, topics, states)
batches = st.lists(events, min_size=1, max_size=8)
clocks = st.integers(0, YEAR_2100_US)
heads = st.builds(
    ChainHead,
    st.integers(0, 2**40),
    st.binary(min_size=32, max_size=32),
    clocks,
)


@st.composite
def logs(draw: st.DrawFn, min_size: int = 1) -> list[LedgerRecord]:
    """A valid log from position 0: several batches, the clock sometimes stepping back."""
    head = ChainHead()
    records: list[LedgerRecord] = []
    for batch in draw(st.lists(batches, min_size=1, max_size=4)):
        sealed = seal_tuples(head, batch, draw(clocks))
        records += sealed.records
        head = sealed.head
    assume(len(records) >= min_size)
    return records


# --- helpers ---------------------------------------------------------------------------


def prepared(item: tuple[str, int, str, bytes]) -> PreparedEvent:
    """An event as validation hands it to the chain, with its body frames."""
    oid, version, topic, state = item
    return PreparedEvent(
        oid, version, topic, state, body_frames(oid.encode(), topic.encode(), state)
    )


def seal_tuples(
    head: ChainHead, events: Sequence[tuple[str, int, str, bytes]], clock: int
) -> SealedBatch:
    return seal(head, [prepared(e) for e in events], clock)


def walk(
    records: Sequence[LedgerRecord],
    *,
    end: int | None = None,
    diagnose: Callable[[int], ChainFault] | None = None,
) -> tuple[ChainFault | None, VerifiedSpan]:
    return first_fault(links_of(records), ChainHead(), end=end, diagnose=diagnose)


def as_stored(records: Sequence[LedgerRecord]) -> Callable[[int], ChainFault]:
    """A ``diagnose`` like the stores': rows and hash lookups as they are stored now."""
    by_position = {r.position: r for r in records}
    position_of_hash: dict[bytes, int] = {}
    position_of_prev_hash: dict[bytes, int] = {}
    for r in sorted(records, key=lambda r: r.position):  # the lowest position, as in SQL
        position_of_hash.setdefault(r.hash, r.position)
        position_of_prev_hash.setdefault(r.prev_hash, r.position)
    return lambda position: diagnose_mismatch(
        by_position[position], position_of_hash.get, position_of_prev_hash.get, by_position.get
    )


def rechain(records: Sequence[LedgerRecord], start: int) -> list[LedgerRecord]:
    """Re-link and re-hash ``records[start:]`` as a forger would, keeping their content."""
    out = list(records[:start])
    prev = out[-1].hash if out else GENESIS_PREV_HASH
    for r in records[start:]:
        linked = r._replace(prev_hash=prev)
        linked = linked._replace(hash=linked.recompute_hash())
        out.append(linked)
        prev = linked.hash
    return out


def move(records: Sequence[LedgerRecord], i: int, j: int) -> list[LedgerRecord]:
    """Swap the contents of positions ``i`` and ``j`` (the position column stays put)."""
    out = list(records)
    out[i] = records[j]._replace(position=records[i].position)
    out[j] = records[i]._replace(position=records[j].position)
    return out


def flip(value: int, bit: int) -> int:
    """Flip one bit of a 64-bit two's complement integer."""
    flipped = (value & (2**64 - 1)) ^ (1 << bit)
    return flipped - 2**64 if flipped >= 2**63 else flipped


def frame(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def frame_i64(value: int) -> bytes:
    return frame(struct.pack(">q", value))


def message_by_hand(r: LedgerRecord) -> bytes:
    return (
        frame_i64(r.position)
        + frame_i64(r.originator_version)
        + frame_i64(r.recorded_at_us)
        + frame(r.originator_id.encode())
        + frame(r.topic.encode())
        + frame(r.state)
        + frame(r.prev_hash)
    )


# --- the canonical encoding ------------------------------------------------------------


def test_the_documented_example_hash() -> None:
    # The example of ledger/canonical.py's docstring, and its exact message bytes.
    message = event_message(0, "a", 1, "t", b"", 0, GENESIS_PREV_HASH)
    assert message == (
        bytes.fromhex("00000008 0000000000000000 00000008 0000000000000001")
        + bytes.fromhex("00000008 0000000000000000 00000001 61 00000001 74 00000000")
        + bytes.fromhex("00000020")
        + bytes(32)
    )
    assert event_hash(0, "a", 1, "t", b"", 0, GENESIS_PREV_HASH).hex()[:16] == "cb5e33ea55c3b82c"


hashes = st.binary(min_size=32, max_size=32)


@given(st.integers(0, MAX_I64), ids, versions, topics, states, clocks, hashes)
def test_event_message_is_the_framed_fields(
    position: int, oid: str, version: int, topic: str, state: bytes, at: int, prev: bytes
) -> None:
    record = LedgerRecord(position, oid, version, topic, state, at, prev, b"")
    message = event_message(position, oid, version, topic, state, at, prev)
    # The same bytes as a by-hand encoding, 84 fixed bytes plus the three variable fields.
    assert message == message_by_hand(record)
    assert len(message) == 84 + len(oid.encode()) + len(topic.encode()) + len(state)
    assert event_hash(position, oid, version, topic, state, at, prev) == (
        hashlib.sha256(message).digest()
    )


# --- sealing ---------------------------------------------------------------------------


@given(heads, batches, clocks)
def test_seal_continues_the_head(
    head: ChainHead, batch: list[tuple[str, int, str, bytes]], clock: int
) -> None:
    sealed = seal_tuples(head, batch, clock)
    recorded = max(clock, head.last_recorded_at_us)
    first = head.next_position
    # Gapless positions from the head's next position.
    assert [r.position for r in sealed.records] == list(range(first, first + len(batch)))
    # The event fields are kept as given; the whole batch shares one recorded_at.
    assert [r[1:5] for r in sealed.records] == [tuple(e) for e in batch]
    assert {r.recorded_at_us for r in sealed.records} == {recorded}
    # Each row links to the previous one's hash, the first to the head's.
    assert [r.prev_hash for r in sealed.records] == [
        head.last_hash,
        *(r.hash for r in sealed.records[:-1]),
    ]
    # The hashes are SHA-256 of the framed fields, as a verifier recomputes them.
    assert [r.hash for r in sealed.records] == [
        hashlib.sha256(message_by_hand(r)).digest() for r in sealed.records
    ]
    assert all(r.hash == r.recompute_hash() for r in sealed.records)
    # The new head points past the batch.
    assert sealed.head == ChainHead(first + len(batch), sealed.records[-1].hash, recorded)


def test_recorded_at_never_decreases_when_the_clock_steps_back() -> None:
    first = seal_tuples(ChainHead(), [("a", 1, "t", b"1")], 1_000)
    second = seal_tuples(first.head, [("a", 2, "t", b"2"), ("b", 1, "t", b"")], 400)
    assert [r.recorded_at_us for r in second.records] == [1_000, 1_000]
    assert second.head == ChainHead(3, second.records[-1].hash, 1_000)
    # And a clock that moved on is taken as is.
    third = seal_tuples(second.head, [("a", 3, "t", b"3")], 2_000)
    assert third.records[0].recorded_at_us == 2_000


def test_sealing_nothing_leaves_position_and_hash() -> None:
    head = ChainHead(7, b"\x01" * 32, 50)
    sealed = seal_tuples(head, [], 40)
    assert sealed.records == []
    assert sealed.head == ChainHead(7, b"\x01" * 32, 50)


# --- the walk: intact logs -------------------------------------------------------------


@given(logs())
def test_an_intact_log_has_no_fault(records: list[LedgerRecord]) -> None:
    n = len(records)
    fault, span = walk(records, end=n)
    assert fault is None
    assert span == VerifiedSpan(0, n, ChainHead(n, records[-1].hash, records[-1].recorded_at_us))


@given(logs(min_size=2), st.data())
def test_a_walk_can_start_mid_log_from_the_stored_head(
    records: list[LedgerRecord], data: st.DataObject
) -> None:
    k = data.draw(st.integers(1, len(records) - 1))
    before = records[k - 1]
    start = ChainHead(k, before.hash, before.recorded_at_us)
    fault, span = first_fault(links_of(records[k:]), start, end=len(records))
    assert fault is None
    assert (span.first_position, span.count) == (k, len(records) - k)


def test_progress_is_reported_every_16384_links() -> None:
    batch = [("a", v, "t", b"") for v in range(2 * 16_384 + 5)]
    records = seal_tuples(ChainHead(), batch, 1).records
    reported: list[int] = []
    fault, span = first_fault(links_of(records), ChainHead(), progress=reported.append)
    assert fault is None and span.count == len(batch)
    assert reported == [16_384, 32_768]


# --- the walk: tampering ---------------------------------------------------------------

FIELDS = [
    "position",
    "originator_id",
    "originator_version",
    "topic",
    "state",
    "recorded_at_us",
    "prev_hash",
    "hash",
]


@given(logs(), st.data())
def test_flipping_any_bit_of_any_field_is_a_fault_at_that_row(
    records: list[LedgerRecord], data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(records) - 1), label="index")
    field = data.draw(st.sampled_from(FIELDS), label="field")
    value = getattr(records[i], field)
    if isinstance(value, int):
        altered: object = flip(value, data.draw(st.integers(0, 63), label="bit"))
    else:
        raw = value.encode() if isinstance(value, str) else value
        assume(raw)  # an empty state has no bit to flip
        bit = data.draw(st.integers(0, 8 * len(raw) - 1), label="bit")
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        if isinstance(value, str):
            try:  # the table holds valid UTF-8 only
                altered = flipped.decode()
            except UnicodeDecodeError:
                assume(False)
        else:
            altered = bytes(flipped)
    tampered = list(records)
    tampered[i] = records[i]._replace(**{field: altered})

    fault, span = walk(tampered, end=len(records))
    assert fault is not None
    assert fault.position == i
    assert span.count == i
    # A changed position is a missing position; any other change, even to prev_hash or
    # recorded_at (both inside the message), fails the hash before the link/time checks.
    expected = FaultKind.GAP if field == "position" else FaultKind.HASH_MISMATCH
    assert fault.kind is expected
    # The stores' diagnosis does not mistake an altered row for a moved one.
    diagnosed, _ = walk(tampered, end=len(records), diagnose=as_stored(tampered))
    assert diagnosed == fault


def test_hash_mismatch_names_both_hashes() -> None:
    records = seal_tuples(ChainHead(), [("a", 1, "t", b"x"), ("a", 2, "t", b"y")], 10).records
    tampered = [records[0], records[1]._replace(state=b"z")]
    fault, _ = walk(tampered)
    computed = tampered[1].recompute_hash()
    assert fault == ChainFault(
        1,
        FaultKind.HASH_MISMATCH,
        f"stored hash {records[1].hash.hex()} does not match the content's hash "
        f"{computed.hex()}: the row was altered (or moved from a position that "
        "could not be identified)",
    )


@given(logs(), st.data())
def test_deleting_a_row_is_a_gap_at_its_position(
    records: list[LedgerRecord], data: st.DataObject
) -> None:
    n = len(records)
    i = data.draw(st.integers(0, n - 1))
    fault, span = walk(records[:i] + records[i + 1 :], end=n)
    detail = (
        f"position {i} is missing: the next stored position is {i + 1}"
        if i < n - 1
        else f"positions {i} to {i} are missing"
    )
    assert fault == ChainFault(i, FaultKind.GAP, detail)
    assert span.count == i


@given(logs(min_size=2), st.data())
def test_end_reports_missing_tail_positions_as_a_gap(
    records: list[LedgerRecord], data: st.DataObject
) -> None:
    n = len(records)
    k = data.draw(st.integers(0, n - 1))
    fault, span = walk(records[:k], end=n)
    assert fault == ChainFault(k, FaultKind.GAP, f"positions {k} to {n - 1} are missing")
    assert span.count == k
    # Without end= the shorter log is intact: truncation alone is undetectable.
    assert walk(records[:k])[0] is None


def test_end_at_or_before_the_last_row_is_no_gap() -> None:
    records = seal_tuples(ChainHead(), [("a", v, "t", b"") for v in range(3)], 5).records
    assert walk(records, end=3)[0] is None
    assert walk(records, end=2)[0] is None


@given(logs(min_size=3), st.data())
def test_swapping_two_rows_apart_is_reordered(
    records: list[LedgerRecord], data: st.DataObject
) -> None:
    # Rows i and j > i + 1 swap contents: the row at i still hashes correctly at j,
    # one past the (unmoved) row holding its prev_hash, so the store sees a move.
    n = len(records)
    i = data.draw(st.integers(0, n - 3))
    j = data.draw(st.integers(i + 2, n - 1))
    tampered = move(records, i, j)
    fault, span = walk(tampered, end=n, diagnose=as_stored(tampered))
    assert fault == ChainFault(
        i,
        FaultKind.REORDERED,
        f"the event stored at position {i} was recorded at position {j}: "
        "rows were inserted, removed or moved",
    )
    assert span.count == i
    # Without a diagnosis the same position fails as a plain mismatch.
    plain, _ = walk(tampered, end=n)
    assert plain is not None
    assert (plain.position, plain.kind) == (i, FaultKind.HASH_MISMATCH)


@given(logs(min_size=3), st.data())
def test_swapping_adjacent_rows_is_reordered(
    records: list[LedgerRecord], data: st.DataObject
) -> None:
    # Rows i and i + 1 swap contents. The row holding the moved row's prev_hash moved
    # too, but its successor (the row whose prev_hash is its hash) did not: the stores'
    # diagnosis finds the recorded position i + 1 from there.
    n = len(records)
    i = data.draw(st.integers(0, n - 3))
    tampered = move(records, i, i + 1)
    fault, span = walk(tampered, end=n, diagnose=as_stored(tampered))
    assert fault == ChainFault(
        i,
        FaultKind.REORDERED,
        f"the event stored at position {i} was recorded at position {i + 1}: "
        "rows were inserted, removed or moved",
    )
    assert span.count == i


def test_swapping_the_last_two_rows_is_reordered() -> None:
    # The moved row has no successor and its predecessor moved too: where that
    # predecessor was recorded is found first, and the row was recorded one after it.
    records = seal_tuples(ChainHead(), [("a", v, "t", b"") for v in range(4)], 5).records
    tampered = move(records, 2, 3)
    fault, _ = walk(tampered, end=4, diagnose=as_stored(tampered))
    assert fault is not None
    assert (fault.position, fault.kind) == (2, FaultKind.REORDERED)


def test_diagnosis_with_the_positions_rows_were_recorded_at() -> None:
    # Given where each hash was recorded (e.g. from a trusted copy), any swap, the
    # last two rows included, is recognised as a move.
    records = seal_tuples(ChainHead(), [("a", v, "t", b"") for v in range(4)], 5).records
    tampered = move(records, 2, 3)
    recorded_at_position = {r.hash: r.position for r in records}
    fault, _ = walk(
        tampered,
        end=4,
        diagnose=lambda p: diagnose_mismatch(tampered[p], recorded_at_position.get),
    )
    assert fault == ChainFault(
        2,
        FaultKind.REORDERED,
        "the event stored at position 2 was recorded at position 3: "
        "rows were inserted, removed or moved",
    )


@given(logs(min_size=1), st.data(), events)
def test_inserting_a_forged_row_is_reordered_at_the_row_it_displaced(
    records: list[LedgerRecord], data: st.DataObject, forged_event: tuple[str, int, str, bytes]
) -> None:
    # A self-consistent row forged at k, with the later rows shifted up by one: the
    # forgery passes, the displaced row (recorded at k) is found moved to k + 1.
    n = len(records)
    k = data.draw(st.integers(0, n - 1))
    before = records[k - 1] if k else None
    head = ChainHead() if before is None else ChainHead(k, before.hash, before.recorded_at_us)
    forged = seal_tuples(head, [forged_event], head.last_recorded_at_us).records[0]
    shifted = [r._replace(position=r.position + 1) for r in records[k:]]
    tampered = [*records[:k], forged, *shifted]
    fault, span = walk(tampered, end=n + 1, diagnose=as_stored(tampered))
    assert fault == ChainFault(
        k + 1,
        FaultKind.REORDERED,
        f"the event stored at position {k + 1} was recorded at position {k}: "
        "rows were inserted, removed or moved",
    )
    assert span.count == k + 1


@given(logs(min_size=1), st.data())
def test_a_rehashed_row_with_another_prev_hash_is_a_broken_link(
    records: list[LedgerRecord], data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(records) - 1))
    other = data.draw(st.binary(min_size=32, max_size=32))
    assume(other != records[i].prev_hash)
    edited = records[i]._replace(prev_hash=other)
    edited = edited._replace(hash=edited.recompute_hash())
    tampered = [*records[:i], edited, *records[i + 1 :]]
    expected_link = records[i - 1].hash if i else GENESIS_PREV_HASH
    fault, _ = walk(tampered, end=len(records))
    assert fault == ChainFault(
        i,
        FaultKind.BROKEN_LINK,
        f"prev_hash {other.hex()} is not the hash of position {i - 1} ({expected_link.hex()})",
    )


@given(logs(min_size=2), st.data())
def test_a_lowered_recorded_at_rehashed_and_rechained_is_time_regressed(
    records: list[LedgerRecord], data: st.DataObject
) -> None:
    n = len(records)
    i = data.draw(st.integers(1, n - 1))
    previous = records[i - 1].recorded_at_us
    lowered = data.draw(st.integers(previous - 10**12, previous - 1))
    edited = [*records[:i], records[i]._replace(recorded_at_us=lowered), *records[i + 1 :]]
    tampered = rechain(edited, i)
    # Every hash and link holds; only time runs backwards at i.
    assert all(r.hash == r.recompute_hash() for r in tampered)
    fault, span = walk(tampered, end=n)
    assert fault == ChainFault(
        i,
        FaultKind.TIME_REGRESSED,
        f"recorded_at {lowered} µs is earlier than position {i - 1}'s {previous} µs",
    )
    assert span.count == i


def test_a_genesis_row_before_the_epoch_is_time_regressed() -> None:
    # The walk starts at recorded_at 0, so a negative time fails even at position 0.
    record = seal_tuples(ChainHead(), [("a", 1, "t", b"")], 0).records[0]
    early = rechain([record._replace(recorded_at_us=-1)], 0)
    fault, _ = walk(early)
    assert fault == ChainFault(
        0, FaultKind.TIME_REGRESSED, "recorded_at -1 µs is earlier than position -1's 0 µs"
    )


@given(logs(min_size=2), st.data())
def test_a_whole_tail_rewritten_and_rechained_passes(
    records: list[LedgerRecord], data: st.DataObject
) -> None:
    # docs/FORMAT.md section 5: the chain alone cannot see a consistently rewritten tail.
    k = data.draw(st.integers(0, len(records) - 1))
    rewritten = rechain([*records[:k], *(r._replace(state=r.state + b"!") for r in records[k:])], k)
    assert walk(rewritten, end=len(records))[0] is None
    assert rewritten[-1].hash != records[-1].hash


# --- the walk agrees with docs/FORMAT.md section 4, written out independently ----------


def spec_verify(rows: Sequence[LedgerRecord], last: int) -> tuple[int, str] | None:
    """The verifier of docs/FORMAT.md section 4, without ledger.chain."""

    def sha(message: bytes) -> bytes:
        return hashlib.sha256(message).digest()

    def lowest(key: Callable[[LedgerRecord], bytes], value: bytes) -> int | None:
        return min((r.position for r in rows if key(r) == value), default=None)

    by_position = {r.position: r for r in rows}

    def origin(row: LedgerRecord, depth: int) -> int | None:
        # Section 4, rule 2: the candidates, in the document's order.
        m = message_by_hand(row)
        candidates: list[int | None] = []
        if row.prev_hash == bytes(32):
            candidates.append(0)
        else:
            before = lowest(lambda r: r.hash, row.prev_hash)
            if before is not None:
                candidates.append(before + 1)
                moved = by_position.get(before)
                if depth and moved is not None and sha(message_by_hand(moved)) != moved.hash:
                    earlier = origin(moved, depth - 1)
                    candidates.append(None if earlier is None else earlier + 1)
        after = lowest(lambda r: r.prev_hash, row.hash)
        candidates.append(None if after is None else after - 1)
        for q in candidates:
            if q is not None and sha(frame_i64(q) + m[12:]) == row.hash:
                return q
        return None

    expected, last_hash, last_time = 0, bytes(32), 0
    for row in rows:
        if row.position != expected:
            return expected, "gap"
        m = message_by_hand(row)
        if sha(m) != row.hash:
            q = origin(row, 2)
            return row.position, "reordered" if q is not None and q != row.position else (
                "hash_mismatch"
            )
        if row.prev_hash != last_hash:
            return row.position, "broken_link"
        if row.recorded_at_us < last_time:
            return row.position, "time_regressed"
        last_hash, last_time = row.hash, row.recorded_at_us
        expected += 1
    if expected <= last:
        return expected, "gap"
    return None


@st.composite
def tampered_logs(draw: st.DrawFn) -> tuple[list[LedgerRecord], int]:
    """A log, maybe tampered with in one of the ways sections 4 and 5 describe."""
    records = draw(logs())
    n = len(records)
    i = draw(st.integers(0, n - 1))
    j = draw(st.integers(0, n - 1))
    how = draw(st.sampled_from(["none", "state", "prev", "delete", "swap", "relink", "time"]))
    if how == "state":
        records[i] = records[i]._replace(state=records[i].state + b"\x00")
    elif how == "prev":
        records[i] = records[i]._replace(prev_hash=bytes(32 - len(b"x")) + b"x")
    elif how == "delete":
        del records[i]
    elif how == "swap":
        records = move(records, i, j)
    elif how == "relink":
        relinked = records[i]._replace(prev_hash=b"\x01" * 32)
        records[i] = relinked._replace(hash=relinked.recompute_hash())
    elif how == "time":
        lowered = records[i]._replace(recorded_at_us=records[i].recorded_at_us - 1)
        records = rechain([*records[:i], lowered, *records[i + 1 :]], i)
    return records, n - 1


@given(tampered_logs())
def test_first_fault_reports_what_the_format_document_specifies(
    case: tuple[list[LedgerRecord], int],
) -> None:
    records, last = case
    fault, _ = walk(records, end=last + 1, diagnose=as_stored(records))
    expected = spec_verify(records, last)
    event("no fault" if expected is None else expected[1])
    assert (None if fault is None else (fault.position, fault.kind.value)) == expected


# --- time conversion -------------------------------------------------------------------

offsets = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)


@given(
    st.datetimes(
        min_value=datetime(2, 1, 1),
        max_value=datetime(9998, 12, 31),
        timezones=st.one_of(st.just(UTC), offsets),
    )
)
def test_datetime_micros_round_trip(moment: datetime) -> None:
    micros = datetime_to_micros(moment)
    back = micros_to_datetime(micros)
    assert back == moment  # the same instant
    assert back.utcoffset() == timedelta(0)
    # The exact integer count (timedelta // timedelta is integer arithmetic, no float).
    assert micros == (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


@given(st.integers(-62_000_000_000_000_000, 253_000_000_000_000_000))
def test_micros_datetime_round_trip(micros: int) -> None:
    assert datetime_to_micros(micros_to_datetime(micros)) == micros


def test_exact_conversions() -> None:
    assert datetime_to_micros(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert datetime_to_micros(datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)) == -1
    assert datetime_to_micros(datetime(2000, 1, 1, tzinfo=UTC)) == PG_EPOCH_OFFSET_US
    assert datetime_to_micros(datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)) == (
        1_767_323_045_678_901
    )
    later = datetime(2026, 1, 2, 4, 4, 5, 678_901, tzinfo=timezone(timedelta(hours=1)))
    assert datetime_to_micros(later) == 1_767_323_045_678_901
    assert micros_to_datetime(-1) == datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)


@given(st.datetimes(min_value=datetime(2, 1, 1)))
def test_naive_datetimes_are_rejected(moment: datetime) -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        datetime_to_micros(moment)


# --- PostgreSQL binary COPY framing ----------------------------------------------------


def copy_row(r: LedgerRecord, recorded_frame: bytes) -> bytes:
    """A binary COPY tuple of the eight columns in canonical order, built by hand."""
    return (
        b"\x00\x08"
        + frame_i64(r.position)
        + frame_i64(r.originator_version)
        + recorded_frame
        + frame(r.originator_id.encode())
        + frame(r.topic.encode())
        + frame(r.state)
        + frame(r.prev_hash)
        + frame(r.hash)
    )


def copy_out_chunks(records: Sequence[LedgerRecord]) -> list[bytes]:
    """What PostgreSQL sends for the verify query: one message per row, the 19-byte
    header before the first row, the 2-byte trailer alone at the end."""
    rows = [copy_row(r, frame_i64(r.recorded_at_us)) for r in records]
    if not rows:
        return [COPY_SIGNATURE + COPY_TRAILER]
    return [COPY_SIGNATURE + rows[0], *rows[1:], COPY_TRAILER]


@given(heads, batches, clocks)
def test_copy_payload_is_the_binary_copy_of_the_sealed_rows(
    head: ChainHead, batch: list[tuple[str, int, str, bytes]], clock: int
) -> None:
    sealed = seal_tuples(head, batch, clock)
    bodies = [prepared(e).body for e in batch]
    payload = copy_payload(sealed.records, bodies)
    # copy_in differs from the verify query's rows only in the timestamp frame, which
    # carries PostgreSQL's own count of microseconds since 2000-01-01.
    pg_stamp = frame_i64(sealed.head.last_recorded_at_us - PG_EPOCH_OFFSET_US)
    rows = b"".join(copy_row(r, pg_stamp) for r in sealed.records)
    assert copy_rows(sealed.records, bodies) == rows
    assert payload == COPY_SIGNATURE + rows + COPY_TRAILER
    assert copy_rows([], []) == b""


@pytest.mark.parametrize("chunk_type", [bytes, memoryview])
@given(logs())
def test_parse_links_hashes_the_message_slice_of_each_copy_row(
    chunk_type: type, records: list[LedgerRecord]
) -> None:
    chunks = [chunk_type(c) for c in copy_out_chunks(records)]
    links = list(parse_links(iter(chunks)))
    assert links == [(r.position, r.recorded_at_us, r.prev_hash, r.hash, r.hash) for r in records]
    # Each row's bytes after the field count, up to F(prev_hash), are the message.
    row = copy_out_chunks(records)[0][len(COPY_SIGNATURE) :]
    assert row[2 : len(row) - 36] == message_by_hand(records[0])
    fault, span = first_fault(iter(links), ChainHead(), end=len(records))
    assert fault is None and span.count == len(records)


def test_parse_links_of_an_empty_result() -> None:
    # No rows: one message holding the header and the trailer.
    assert list(parse_links(iter([COPY_SIGNATURE + COPY_TRAILER]))) == []


def test_parse_links_sees_an_altered_state_byte() -> None:
    records = seal_tuples(ChainHead(), [("a", 1, "t", b"abc"), ("a", 2, "t", b"def")], 9).records
    chunks = copy_out_chunks(records)
    second = bytearray(chunks[1])
    second[second.index(b"def")] ^= 0x01  # "def" -> "eef" in the stored row
    links = list(parse_links(iter([chunks[0], bytes(second), chunks[2]])))
    assert links[1][4] == records[1]._replace(state=b"eef").recompute_hash()
    fault, _ = first_fault(iter(links), ChainHead(), end=2)
    assert fault is not None
    assert (fault.position, fault.kind) == (1, FaultKind.HASH_MISMATCH)
