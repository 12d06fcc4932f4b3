"""LedgerTranscoder writes exactly the bytes of eventsourcing's JSONTranscoder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex
from hypothesis import example, given
from hypothesis import strategies as st

from ledger.transcoder import LedgerTranscoder


def _registered(transcoder: JSONTranscoder) -> JSONTranscoder:
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return transcoder


JSON = _registered(JSONTranscoder())
LEDGER = _registered(LedgerTranscoder())


def _outcome(transcoder: JSONTranscoder, state: Any) -> bytes | type[BaseException]:
    try:
        return transcoder.encode(state)
    except Exception as exc:  # the same failure, whichever encodes
        return type(exc)


class Side(StrEnum):
    BUY = "BUY"


scalars = st.one_of(
    st.text(),  # every code point, lone surrogates included
    st.integers(min_value=-(2**70), max_value=2**70),  # past 64 bits too
    st.booleans(),
    st.none(),
    st.floats(),  # NaN and infinities too
    st.decimals(),  # sNaN, NaN, infinities, exponents
    st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=-5))])),
    st.uuids(),
    st.just(Side.BUY),
    st.just(b"bytes"),
)
states = st.dictionaries(
    st.one_of(st.text(), st.integers(0, 3)),
    st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.tuples(inner, inner)
            | st.dictionaries(st.text(max_size=5), inner, max_size=4)
        ),
        max_leaves=12,
    ),
    max_size=8,
)


@given(states)
@example({"quantity": Decimal("101.10"), "at": datetime(2026, 3, 2, 9, tzinfo=UTC), "n": 2**64})
@example({"text": "\x00\x1f\x7f\u2028\ud800", "evidence": {"canary_p95_ms": "171"}})
def test_same_bytes_or_same_error_as_json_transcoder(state: dict[Any, Any]) -> None:
    assert _outcome(LEDGER, state) == _outcome(JSON, state)


def test_an_order_state_takes_the_fast_path() -> None:
    state = {
        "originator_topic": "domain.trading:Order",
        "quantity": Decimal("500"),
        "occurred_at": datetime(2026, 3, 2, 9, 0, 1, 250000, tzinfo=UTC),
        "venue": "XETR",
        "decision_id": None,
        "deployment": UUID("12345678-1234-5678-1234-567812345678"),
        "evidence": {"window": "5m"},
        "level": 2,
        "emergency": False,
    }
    expected = (
        b'{"originator_topic":"domain.trading:Order",'
        b'"quantity":{"_type_":"decimal_str","_data_":"500"},'
        b'"occurred_at":{"_type_":"datetime_iso","_data_":"2026-03-02T09:00:01.250000+00:00"},'
        b'"venue":"XETR","decision_id":null,'
        b'"deployment":{"_type_":"uuid_hex","_data_":"12345678123456781234567812345678"},'
        b'"evidence":{"window":"5m"},"level":2,"emergency":false}'
    )
    assert LEDGER._plain(state) is not state  # encoded by orjson, not handed to json
    assert LEDGER.encode(state) == JSON.encode(state) == expected


@pytest.mark.parametrize(
    "value", [1.5, Side.BUY, 2**64, {1: "a"}], ids=["float", "str-enum", "int>64bit", "int-key"]
)
def test_values_orjson_would_write_otherwise_go_to_json(value: Any) -> None:
    state = {"value": value}
    assert LEDGER.encode(state) == JSON.encode(state)
