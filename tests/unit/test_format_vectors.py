"""The test vectors of docs/FORMAT.md, read out of the document itself.

Each vector is a fenced ```vector block of ``key: value`` lines; a line indented by
spaces continues the value above it, and ``#`` starts a comment in hex values. The
vectors are checked against ledger.canonical and against an independent
re-implementation below (struct + hashlib only), so the document, the code and the
specification cannot drift apart silently.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ledger.canonical import event_hash, event_message, micros_to_datetime
from ledger.chain import ChainHead, LedgerRecord, first_fault, links_of
from streams.indicators import Snapshot

FORMAT_MD = Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md"

_BLOCK = re.compile(r"^```vector\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_KEY = re.compile(r"^([a-z0-9_]+):(?: (.*))?$")
_HEX_KEYS = {"originator_id_utf8", "topic_utf8", "state_hex", "prev_hash", "message", "hash"}
_INT_KEYS = {"position", "originator_version", "recorded_at_us", "state_len", "message_len"}
_REQUIRED = {
    "name",
    "position",
    "originator_id",
    "originator_id_utf8",
    "originator_version",
    "topic",
    "topic_utf8",
    "state_len",
    "state_hex",
    "recorded_at_us",
    "recorded_at",
    "prev_hash",
    "message",
    "message_len",
    "hash",
}
# (a), (b) and (c) are documented as the first three rows of one valid log.
_CHAIN = ["a-genesis", "b-second", "c-unicode-empty-state"]


def _parse_block(text: str) -> dict[str, Any]:
    raw: dict[str, list[str]] = {}
    key: str | None = None
    for line in text.splitlines():
        if line[:1].isspace():
            # A continuation of the previous key's value.
            assert key is not None, f"continuation line before any key: {line!r}"
            raw[key].append(line)
            continue
        match = _KEY.match(line)
        assert match is not None, f"not a `key: value` line: {line!r}"
        key = match.group(1)
        assert key not in raw, f"key {key!r} given twice"
        raw[key] = [match.group(2) or ""]
    vector: dict[str, Any] = {}
    for k, lines in raw.items():
        if k in _HEX_KEYS:
            digits = "".join(re.sub(r"\s+", "", ln.split("#", 1)[0]) for ln in lines)
            assert re.fullmatch(r"(?:[0-9a-f]{2})*", digits), f"{k}: not lowercase hex"
            vector[k] = bytes.fromhex(digits)
        elif k in _INT_KEYS:
            assert len(lines) == 1, k
            vector[k] = int(lines[0])
        else:
            assert len(lines) == 1, k
            vector[k] = lines[0]
    missing = _REQUIRED - vector.keys()
    assert not missing, f"vector {vector.get('name')!r} lacks {sorted(missing)}"
    return vector


def _vectors() -> list[dict[str, Any]]:
    return [_parse_block(m.group(1)) for m in _BLOCK.finditer(FORMAT_MD.read_text("utf-8"))]


VECTORS = _vectors()


def _independent(v: dict[str, Any]) -> tuple[bytes, bytes]:
    """The message and hash of FORMAT.md section 3, written without the ledger package."""

    def frame(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    def integer(n: int) -> bytes:
        return frame(struct.pack(">q", n))

    message = (
        integer(v["position"])
        + integer(v["originator_version"])
        + integer(v["recorded_at_us"])
        + frame(v["originator_id_utf8"])
        + frame(v["topic_utf8"])
        + frame(v["state_hex"])
        + frame(v["prev_hash"])
    )
    return message, hashlib.sha256(message).digest()


def _args(v: dict[str, Any]) -> tuple[Any, ...]:
    return (
        v["position"],
        v["originator_id"],
        v["originator_version"],
        v["topic"],
        v["state_hex"],
        v["recorded_at_us"],
        v["prev_hash"],
    )


def test_the_document_holds_at_least_four_distinct_vectors() -> None:
    # A parser that silently finds nothing must not pass: the brief asks for >= 4.
    names = [v["name"] for v in VECTORS]
    assert len(VECTORS) >= 4
    assert len(set(names)) == len(names)
    assert set(_CHAIN) <= set(names)


@pytest.mark.parametrize("v", VECTORS, ids=[str(v["name"]) for v in VECTORS])
def test_the_readable_fields_agree_with_the_authoritative_bytes(v: dict[str, Any]) -> None:
    # Text fields are shown both as text and as their UTF-8 bytes: they must agree.
    assert str(v["originator_id"]).encode("utf-8") == v["originator_id_utf8"]
    assert str(v["topic"]).encode("utf-8") == v["topic_utf8"]
    state = v["state_hex"]
    assert len(state) == v["state_len"]
    if "state_text" in v:
        assert str(v["state_text"]).encode("ascii") == state
    # The ISO-8601 form is the same instant as the microsecond count.
    iso = datetime.fromisoformat(str(v["recorded_at"]).replace("Z", "+00:00"))
    assert iso == micros_to_datetime(v["recorded_at_us"])
    assert len(v["prev_hash"]) == 32
    assert len(v["hash"]) == 32
    assert len(v["message"]) == v["message_len"]


@pytest.mark.parametrize("v", VECTORS, ids=[str(v["name"]) for v in VECTORS])
def test_ledger_canonical_gives_the_documented_message_and_hash(v: dict[str, Any]) -> None:
    assert event_message(*_args(v)) == v["message"]
    assert event_hash(*_args(v)) == v["hash"]


@pytest.mark.parametrize("v", VECTORS, ids=[str(v["name"]) for v in VECTORS])
def test_an_independent_implementation_agrees(v: dict[str, Any]) -> None:
    message, digest = _independent(v)
    assert message == v["message"]
    assert digest == v["hash"]
    # The documented layout: 84 fixed bytes plus the three variable fields.
    variable = (v["originator_id_utf8"], v["topic_utf8"], v["state_hex"])
    assert len(message) == 84 + sum(len(field) for field in variable)


def test_vectors_a_b_c_are_a_valid_three_event_log() -> None:
    # As documented: (a) is the genesis, (b) links to (a), (c) to (b), and a walk of
    # the three rows with the chain rules finds no fault.
    by_name = {v["name"]: v for v in VECTORS}
    rows = [by_name[name] for name in _CHAIN]
    records = [LedgerRecord(*_args(v), v["hash"]) for v in rows]
    assert [r.position for r in records] == [0, 1, 2]
    assert records[0].prev_hash == bytes(32)
    assert records[1].prev_hash == records[0].hash
    assert records[2].prev_hash == records[1].hash
    fault, span = first_fault(links_of(records), ChainHead(), end=3)
    assert fault is None
    assert span.count == 3
    assert span.head == ChainHead(3, records[2].hash, records[2].recorded_at_us)


def test_the_worked_merkle_root_of_section_5_1() -> None:
    # The root printed in section 5.1, over vectors (a), (b) and (c), read from the doc.
    from ledger.merkle import leaf_hash, node_hash, root

    text = FORMAT_MD.read_text(encoding="utf-8")
    section = text[text.index("### 5.1") : text.index("### 5.2")]
    printed = re.search(r"^\s+([0-9a-f]{64})\s*$", section, re.MULTILINE)
    assert printed is not None
    hashes = [bytes.fromhex(h) for h in re.findall(r"^hash:\s*([0-9a-f]{64})", text, re.M)[:3]]
    by_hand = node_hash(node_hash(leaf_hash(hashes[0]), leaf_hash(hashes[1])), leaf_hash(hashes[2]))
    assert root(hashes) == by_hand == bytes.fromhex(printed.group(1))


# --- section 9: indicator snapshots ------------------------------------------------------

_SNAPSHOT = re.compile(r"^```snapshot\ntext: (.*)\nsha256: ([0-9a-f]{64})\n```$", re.MULTILINE)


def test_the_snapshot_vector_hashes_and_round_trips() -> None:
    [(text, digest)] = _SNAPSHOT.findall(FORMAT_MD.read_text(encoding="utf-8"))
    data = text.encode("ascii")
    assert hashlib.sha256(data).hexdigest() == digest
    snapshot = Snapshot.from_canonical(data)  # refuses bytes that are not canonical
    assert snapshot.canonical() == data and snapshot.hash == digest
    assert (snapshot.symbol, snapshot.timeframe, snapshot.bar_time.isoformat()) == (
        "DE0007164600", "1s", "2026-03-02T09:00:05+00:00",
    )  # fmt: skip
    # The rules of section 9 by hand: sorted keys, no spaces, ASCII, repr of floats.
    document = json.loads(text)
    again = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert again == text
    assert document["values"]["SUPERTREND.trend"] == 1
    assert repr(document["values"]["ROC"]) == "-0.0"
