"""The ``ledger.events`` message schema, the consumer's continuity check, and the stream
settings: pure logic, no broker.

Round trips are property tests; every malformed field has its exact error message.
"""

from __future__ import annotations

import doctest
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

import streams.app
import streams.codecs
import streams.relay
import streams.settings
from ledger.canonical import datetime_to_micros
from ledger.chain import LedgerRecord
from ledger.errors import ConfigurationError
from streams.codecs import (
    GENESIS_PREV_HASH_HEX,
    LedgerMessage,
    StreamCodecError,
    decode_ledger_event,
    encode_ledger_event,
    encode_message,
)
from streams.relay import ContinuityChecker, ContinuityError
from streams.settings import StreamSettings, bootstrap_servers

H = [f"{n:02x}" * 32 for n in range(16)]  # distinct, well-formed hashes
WHEN = datetime(2026, 3, 2, 7, 9, 36, 632000, tzinfo=UTC)

# --- strategies -----------------------------------------------------------------------------

hashes = st.binary(min_size=32, max_size=32).map(bytes.hex)
topics = st.from_regex(r"[a-z_][a-z0-9_.]{0,20}:[A-Z][A-Za-z0-9_.]{0,20}", fullmatch=True)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
messages = st.builds(
    LedgerMessage,
    position=st.integers(0, 2**63 - 1),
    hash=hashes,
    prev_hash=hashes,
    topic=topics,
    originator_id=st.text(min_size=1),
    originator_version=st.integers(0, 2**63 - 1),
    recorded_at=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
    ),
    payload=st.dictionaries(st.text(), json_values, max_size=6),
)


def message(position: int, hash: str, prev_hash: str) -> LedgerMessage:
    return LedgerMessage(
        position, hash, prev_hash, "domain.trading:Order.Placed", "o-1", 1, WHEN, {}
    )


def chain(count: int, start: int = 0, prev: str = GENESIS_PREV_HASH_HEX) -> list[LedgerMessage]:
    """Well-linked messages ``start``.. with hashes H[start], H[start + 1], ..."""
    out = []
    for position in range(start, start + count):
        out.append(message(position, H[position], prev))
        prev = H[position]
    return out


# --- round trips ----------------------------------------------------------------------------


@given(messages)
def test_a_message_round_trips(original: LedgerMessage) -> None:
    assert decode_ledger_event(encode_message(original)) == original


@given(
    st.integers(0, 10**9),
    hashes,
    hashes,
    st.integers(0, 2**40),
    st.decimals(allow_nan=False, allow_infinity=False),
)
def test_a_ledger_row_becomes_its_message(
    position: int, digest: str, prev: str, micros: int, price: Decimal
) -> None:
    record = LedgerRecord(
        position, "3d8f9cb5-2c60-5cf9-b300-afbafcc2ba71", 2, "domain.trading:Order.Amended",
        b"{}", micros, bytes.fromhex(prev), bytes.fromhex(digest),
    )  # fmt: skip
    state = {"price": price, "at": WHEN, "id": UUID(int=7), "tags": ("a",)}
    decoded = decode_ledger_event(encode_ledger_event(record, state))
    assert decoded.position == position
    assert (decoded.hash, decoded.prev_hash) == (digest, prev)
    assert decoded.recorded_at_us == micros
    assert (decoded.originator_id, decoded.originator_version, decoded.topic) == (
        record.originator_id, 2, record.topic,
    )  # fmt: skip
    # Decimals, times and ids as strings, exactly as `regledger events --format json`.
    assert decoded.payload == {
        "price": str(price),
        "at": "2026-03-02T07:09:36.632000+00:00",
        "id": "00000000-0000-0000-0000-000000000007",
        "tags": ["a"],
    }


def test_the_wire_format_is_compact_json_in_schema_order() -> None:
    wire = encode_message(message(41, H[1], H[0]))
    assert wire == (
        b'{"position":41,"hash":"' + H[1].encode() + b'","prev_hash":"' + H[0].encode()
        + b'","topic":"domain.trading:Order.Placed","originator_id":"o-1",'
        b'"originator_version":1,"recorded_at":"2026-03-02T07:09:36.632000Z","payload":{}}'
    )  # fmt: skip
    assert message(41, H[1], H[0]).recorded_at_us == datetime_to_micros(WHEN)


# --- malformed messages ---------------------------------------------------------------------


def valid() -> dict[str, Any]:
    return json.loads(encode_message(message(41, H[1], H[0])))


def with_field(name: str, value: Any) -> bytes:
    document = valid()
    document[name] = value
    return json.dumps(document).encode()


_INT = "must be an integer from 0 to 2**63-1"
_HEX = "must be 64 lowercase hex digits"
_TIME = "must be ISO 8601 UTC with microseconds, e.g. 2026-03-02T07:09:36.632000Z"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("position", -1, f"field 'position' = -1: {_INT}"),
        ("position", 2**63, f"field 'position' = 9223372036854775808: {_INT}"),
        ("position", 1.0, f"field 'position' = 1.0: {_INT}"),
        ("position", "41", f"field 'position' = '41': {_INT}"),
        ("position", True, f"field 'position' = True: {_INT}"),
        ("hash", "xyz", f"field 'hash' = 'xyz': {_HEX}"),
        ("hash", H[10].upper(), f"field 'hash' = '{H[10].upper()}': {_HEX}"),
        ("hash", H[1][:63], f"field 'hash' = '{H[1][:63]}': {_HEX}"),
        ("prev_hash", None, f"field 'prev_hash' = None: {_HEX}"),
        ("prev_hash", H[0] + "0", f"field 'prev_hash' = '{H[0]}0': {_HEX}"),
        ("topic", "Order.Placed", "field 'topic' = 'Order.Placed': "
         "must be an event topic MODULE:Class.Event"),
        ("topic", "", "field 'topic' = '': must be an event topic MODULE:Class.Event"),
        ("originator_id", "", "field 'originator_id' = '': must be a non-empty string"),
        ("originator_id", 7, "field 'originator_id' = 7: must be a non-empty string"),
        ("originator_version", -3, f"field 'originator_version' = -3: {_INT}"),
        ("recorded_at", "2026-03-02T07:09:36Z", f"field 'recorded_at' = '2026-03-02T07:09:36Z'"
         f": {_TIME}"),
        ("recorded_at", "2026-03-02T07:09:36.632000+00:00",
         f"field 'recorded_at' = '2026-03-02T07:09:36.632000+00:00': {_TIME}"),
        ("recorded_at", "2026-13-02T07:09:36.632000Z",
         f"field 'recorded_at' = '2026-13-02T07:09:36.632000Z': {_TIME}"),
        ("payload", [1], "field 'payload' = [1]: must be a JSON object (the event's state)"),
        ("payload", None, "field 'payload' = None: must be a JSON object (the event's state)"),
    ],
)  # fmt: skip
def test_each_malformed_field_is_named_with_its_value(name: str, value: Any, expected: str) -> None:
    with pytest.raises(StreamCodecError) as caught:
        decode_ledger_event(with_field(name, value))
    assert str(caught.value) == f"ledger.events message: {expected}"
    assert (caught.value.field, caught.value.value) == (name, value)


def test_a_missing_field() -> None:
    document = valid()
    del document["prev_hash"]
    with pytest.raises(StreamCodecError) as caught:
        decode_ledger_event(json.dumps(document).encode())
    assert str(caught.value) == "ledger.events message: field 'prev_hash' = None: is missing"


def test_a_field_the_schema_does_not_have() -> None:
    with pytest.raises(StreamCodecError) as caught:
        decode_ledger_event(with_field("hsah", H[1]))
    assert str(caught.value) == (
        f"ledger.events message: field 'hsah' = '{H[1]}': is not a field of the schema "
        "(position, hash, prev_hash, topic, originator_id, originator_version, recorded_at, "
        "payload)"
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"[]", "field 'message' = []: must be a JSON object with the fields position, hash, "
         "prev_hash, topic, originator_id, originator_version, recorded_at, payload"),
        (b"\xff{}", "field 'message' = b'\\xff{}': is not UTF-8 (invalid start byte)"),
        (b"{", "field 'message' = '{': is not JSON (Expecting property name enclosed in "
         "double quotes: line 1 column 2 (char 1))"),
        (b'{"position": NaN}', "field 'message' = '{\"position\": NaN}': is not JSON "
         "(NaN is not JSON)"),
        (b'{"position": 1, "position": 2}', "field 'message' = 'position': has this key twice "
         "in one object; keys must be unique"),
    ],
)  # fmt: skip
def test_what_is_not_a_message_object(data: bytes, expected: str) -> None:
    with pytest.raises(StreamCodecError) as caught:
        decode_ledger_event(data)
    assert str(caught.value) == f"ledger.events message: {expected}"


# --- continuity -----------------------------------------------------------------------------


def test_in_order_from_genesis_every_message_is_new() -> None:
    checker = ContinuityChecker()
    assert [checker.accept(m) for m in chain(5)] == [True] * 5
    assert (checker.position, checker.hash, checker.next_position) == (4, H[4], 5)


def test_exact_duplicates_are_skipped() -> None:
    # A relay that crashed after sending 2..4 sends them again: each arrives twice.
    first, again = chain(5), chain(3, start=2, prev=H[1])
    checker = ContinuityChecker()
    new = list(checker.new([*first, *again, *chain(2, start=5, prev=H[4])]))
    assert [m.position for m in new] == [0, 1, 2, 3, 4, 5, 6]


def test_a_gap_names_the_missing_positions() -> None:
    checker = ContinuityChecker()
    for m in chain(3):
        checker.accept(m)
    with pytest.raises(ContinuityError) as caught:
        checker.accept(message(5, H[5], H[4]))
    assert str(caught.value) == (
        "ledger.events: position 5 arrived but position 3..4 did not: 2 missing before it"
    )
    assert (caught.value.position, caught.value.kind) == (5, "gap")
    with pytest.raises(ContinuityError, match=r"^ledger.events: position 4 arrived but position "
                       r"3 did not: 1 missing before it$"):  # fmt: skip
        checker.accept(message(4, H[4], H[3]))
    assert checker.position == 2  # nothing accepted past the gap


def test_a_broken_link_names_both_hashes() -> None:
    checker = ContinuityChecker()
    for m in chain(3):
        checker.accept(m)
    with pytest.raises(ContinuityError) as caught:
        checker.accept(message(3, H[3], H[9]))
    assert str(caught.value) == (
        f"ledger.events: position 3 links to prev_hash {H[9]} but position 2 has hash {H[2]}"
    )
    assert (caught.value.position, caught.value.kind) == (3, "broken_link")


def test_position_0_must_link_to_genesis() -> None:
    with pytest.raises(ContinuityError) as caught:
        ContinuityChecker().accept(message(0, H[0], H[9]))
    assert str(caught.value) == (
        f"ledger.events: position 0 links to prev_hash {H[9]} but genesis has hash {'0' * 64}"
    )


def test_a_conflicting_duplicate_is_a_fork() -> None:
    checker = ContinuityChecker()
    for m in chain(4):
        checker.accept(m)
    with pytest.raises(ContinuityError) as caught:
        checker.accept(message(1, H[9], H[0]))
    assert str(caught.value) == (
        f"ledger.events: position 1 arrived again with hash {H[9]} but it had hash {H[1]}"
    )
    assert (caught.value.position, caught.value.kind) == (1, "conflict")


def test_from_a_trusted_position() -> None:
    checker = ContinuityChecker(6, H[6])
    assert checker.accept(message(6, H[6], H[5])) is False  # the trusted one, again
    with pytest.raises(ContinuityError, match="position 6 arrived again with hash"):
        checker.accept(message(6, H[9], H[5]))
    assert checker.accept(message(2, H[9], H[1])) is False  # checked before the trust
    assert checker.accept(message(7, H[7], H[6])) is True
    with pytest.raises(ValueError, match="give both a trusted position and its hash"):
        ContinuityChecker(6)


def test_duplicates_older_than_the_window_are_skipped_unchecked() -> None:
    checker = ContinuityChecker(window=2)
    for m in chain(5):
        checker.accept(m)
    assert checker.accept(message(3, H[3], H[2])) is False
    with pytest.raises(ContinuityError, match="position 3 arrived again"):
        checker.accept(message(3, H[9], H[2]))
    assert checker.accept(message(2, H[9], H[1])) is False  # compared when it first came


# --- settings -------------------------------------------------------------------------------


def test_settings_from_the_environment() -> None:
    env = {
        "REGLEDGER_BROKER_URL": "kafka://k1:9092,k2:9093",
        "REGLEDGER_STREAMS_GROUP": "regledger.relay-2",
        "REGLEDGER_DATABASE_URL": "postgresql://app@db/ledger",
    }
    settings = StreamSettings.from_env(env)
    assert (settings.broker_url, settings.group) == ("kafka://k1:9092,k2:9093", "regledger.relay-2")
    assert settings.ledger.database_url == "postgresql://app@db/ledger"
    assert bootstrap_servers(settings.broker_url) == "k1:9092,k2:9093"
    assert StreamSettings.from_env({}) == StreamSettings(None, "regledger")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"REGLEDGER_BROKER_URL": "127.0.0.1:9092"}, "REGLEDGER_BROKER_URL='127.0.0.1:9092' is "
         "not kafka://...; set REGLEDGER_BROKER_URL to kafka://HOST:PORT[,HOST:PORT...]"),
        ({"REGLEDGER_BROKER_URL": "kafka://k1:0"}, "REGLEDGER_BROKER_URL='kafka://k1:0': 'k1:0' "
         "is not HOST:PORT with a port from 1 to 65535; set REGLEDGER_BROKER_URL to "
         "kafka://HOST:PORT[,HOST:PORT...]"),
        ({"REGLEDGER_BROKER_URL": "kafka://k1"}, "REGLEDGER_BROKER_URL='kafka://k1': 'k1' "
         "is not HOST:PORT with a port from 1 to 65535; set REGLEDGER_BROKER_URL to "
         "kafka://HOST:PORT[,HOST:PORT...]"),
        ({"REGLEDGER_STREAMS_GROUP": "reg ledger"}, "REGLEDGER_STREAMS_GROUP='reg ledger' is "
         "not a Kafka group id; use 1 to 249 letters, digits, '.', '_' or '-' "
         "(default: regledger)"),
        ({"REGLEDGER_POOL_SIZE": "0"}, "REGLEDGER_POOL_SIZE='0' must be positive"),
        ({"REGLEDGER_STREAMS_LOG_LEVEL": "loud"}, "REGLEDGER_STREAMS_LOG_LEVEL='loud' is not "
         "one of debug, info, warning, error (default warning)"),
        ({"REGLEDGER_INDICATORS_CONFIG": "/nonexistent/indicators.toml"},
         "REGLEDGER_INDICATORS_CONFIG='/nonexistent/indicators.toml' is not a file; give the "
         "path of an indicators TOML file (or unset it for the shipped catalogue)"),
    ],
)  # fmt: skip
def test_malformed_settings_name_the_variable_and_value(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        StreamSettings.from_env(env)
    assert str(caught.value) == expected


def test_doctests() -> None:
    for module in (streams.app, streams.codecs, streams.relay, streams.settings):
        result = doctest.testmod(module)
        assert result.failed == 0, module.__name__
        assert result.attempted >= 1, module.__name__


def test_a_message_nested_too_deep_is_a_codec_error_not_a_crash() -> None:
    with pytest.raises(StreamCodecError) as caught:
        decode_ledger_event(b"[" * 100_000)
    assert caught.value.field == "message"
    assert str(caught.value).endswith(
        "is not JSON (maximum recursion depth exceeded while decoding a JSON array from a "
        "unicode string)"
    )
