"""The audit message format (streams.ingestion): parsing is pure, and every message is
either a command the facade can be called with or one Rejection naming its field."""

from __future__ import annotations

import doctest
import inspect
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import streams.ingestion
from domain.application import AuditTrail
from domain.base import natural_id
from streams.ingestion import (
    AGGREGATE_KEYS,
    AUDIT_COMMANDS,
    AUDIT_DLQ,
    AUDIT_TOPICS,
    AuditCommand,
    parse_message,
)
from streams.messages import RawMessage, Rejection

LEI = "5493001KJTIIGC8Y1R12"


def order(**change: Any) -> dict[str, Any]:
    fields = {
        "client_order_id": "C-1", "isin": "DE0007164600", "venue": "XETR", "side": "BUY",
        "quantity": 500, "currency": "EUR", "trading_capacity": "DEAL",
        "executing_entity_lei": LEI, "investment_decision": "momentum-v2",
        "execution_decision": "algo-7", "actor": "oms", "occurred_at": "2026-03-02T09:00:00Z",
    }  # fmt: skip
    fields.update(change)
    return {"source_event_id": "oms-1", "command": "place_order", "fields": fields}


def raw(body: dict[str, Any] | bytes | str, topic: str = "audit.trading") -> RawMessage:
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    return RawMessage(topic, 3, 41, b"C-1", body)


def parse(body: dict[str, Any] | bytes | str, topic: str = "audit.trading") -> Any:
    return parse_message(raw(body, topic))


def test_doctests() -> None:
    assert doctest.testmod(streams.ingestion).failed == 0


def test_the_topics_and_their_dead_letter_topic() -> None:
    assert AUDIT_TOPICS == (
        "audit.trading", "audit.risk", "audit.changes", "audit.activity", "audit.models",
    )  # fmt: skip
    assert tuple(AUDIT_COMMANDS) == AUDIT_TOPICS
    assert AUDIT_DLQ == "audit.dlq"
    every = [command for commands in AUDIT_COMMANDS.values() for command in commands]
    assert len(every) == len(set(every)) == 18
    assert all(inspect.isfunction(getattr(AuditTrail, command)) for command in every)


def _tables(doc: str) -> list[list[tuple[str, str]]]:
    """The two-column reST tables of ``doc``: rows of (first cell, second cell), a line
    with an empty first cell continuing the row above."""
    tables = []
    for border, body in re.findall(r"\n(=+) +=+\n(.*?)\n=+ +=+\n", doc, re.S):
        rows: list[tuple[str, str]] = []
        for line in body.split("\n"):
            left, right = line[: len(border)].strip(), line[len(border) :].strip()
            if left:
                rows.append((left, right))
            else:
                rows[-1] = (rows[-1][0], f"{rows[-1][1]} {right}")
        tables.append(rows)
    return tables


def _names(cell: str) -> list[str]:
    return [name.strip("`") for name in re.split(r"[ ,]+", cell) if name]


def test_the_docstring_tables_are_the_code_tables() -> None:
    # Another engineer copies the module docstring into the docs: it must not drift.
    doc = streams.ingestion.__doc__ or ""
    assert (
        '    {"source_event_id": "<non-empty string, max 200>",\n'
        '     "command": "<facade method name>",\n'
        '     "fields": {<keyword arguments>}}\n'
    ) in doc
    example = doc.split("For example, on ``audit.trading``::\n")[1].split("\n\n")[0]
    assert isinstance(parse(example), AuditCommand)
    topics, keys = _tables(doc)
    assert {topic.strip("`"): _names(commands) for topic, commands in topics} == {
        topic: list(commands) for topic, commands in AUDIT_COMMANDS.items()
    }
    assert {command: key.strip("`") for key, commands in keys for command in _names(commands)} == {
        command: key for command, (key, _) in AGGREGATE_KEYS.items()
    }


# --- what parses ---------------------------------------------------------------------------


def test_a_new_aggregate_command_parses_with_exact_decimals() -> None:
    parsed = parse(json.dumps(order(limit_price="?")).replace('"?"', "101.10"))
    assert isinstance(parsed, AuditCommand)
    assert (parsed.source_event_id, parsed.command, parsed.aggregate_id) == (
        "oms-1",
        "place_order",
        None,
    )
    arguments = parsed.arguments()
    assert arguments["limit_price"] == Decimal("101.10")
    assert str(arguments["limit_price"]) == "101.10"  # not the float 101.1
    assert arguments["source_event_id"] == "oms-1"
    assert set(arguments) == {*order()["fields"], "limit_price", "source_event_id"}


def test_a_command_on_an_existing_aggregate_takes_its_natural_key() -> None:
    body = {
        "source_event_id": "oms-2",
        "command": "amend_order",
        "fields": {"client_order_id": " C-1 ", "quantity": "300", "reason": "client",
                   "actor": "trader.ana", "occurred_at": "2026-03-02T09:00:01Z"},
    }  # fmt: skip
    parsed = parse(body)
    assert isinstance(parsed, AuditCommand)
    assert parsed.aggregate_id == natural_id("order", "C-1")  # as the facade strips it
    assert parsed.arguments() == {
        "quantity": "300",
        "reason": "client",
        "actor": "trader.ana",
        "occurred_at": "2026-03-02T09:00:01Z",
        "source_event_id": "oms-2",
    }


@pytest.mark.parametrize(
    ("command", "kind", "key"),
    [(command, kind, key) for command, (key, kind) in AGGREGATE_KEYS.items()],
)
def test_every_natural_key_names_its_aggregate(command: str, kind: str, key: str) -> None:
    topic = next(t for t, names in AUDIT_COMMANDS.items() if command in names)
    parameters = inspect.signature(getattr(AuditTrail, command)).parameters
    fields = {
        name: "x" for name, p in parameters.items()
        if p.kind is p.KEYWORD_ONLY and p.default is p.empty
    }  # fmt: skip
    fields[key] = "K-7"
    parsed = parse({"source_event_id": "s-1", "command": command, "fields": fields}, topic)
    assert isinstance(parsed, AuditCommand), parsed
    assert parsed.aggregate_id == natural_id(kind, "K-7")


# --- what is rejected, and how it is named ----------------------------------------------------

TRADING = (
    "make_trade_decision, place_order, amend_order, cancel_order, record_execution, "
    "amend_execution, cancel_execution, record_market_data_usage"
)


@pytest.mark.parametrize(
    ("body", "field", "error"),
    [
        (b"\xff{}", "message", "message is not UTF-8: invalid start byte at byte 0"),
        (b"", "message", "message is not JSON: Expecting value at line 1 column 1"),
        (
            b'{"source_event_id": "a"',
            "message",
            "message is not JSON: Expecting ',' delimiter at line 1 column 24",
        ),
        (b"[]", "message", "message must be a JSON object, not an array"),
        (b'"place_order"', "message", "message must be a JSON object, not a string"),
        (b"null", "message", "message must be a JSON object, not null"),
        (b"12.5", "message", "message must be a JSON object, not a number"),
        (b"NaN", "message", "message must be a JSON object, not NaN"),
        (
            b"[" * 100_000,
            "message",
            "message is not JSON the ledger can take: maximum recursion depth exceeded while "
            "decoding a JSON array from a unicode string",
        ),
        (
            b'{"source_event_id": 1' + b"0" * 5000 + b"}",
            "message",
            "message is not JSON the ledger can take: Exceeds the limit (4300 digits) for "
            "integer string conversion: value has 5001 digits; use sys.set_int_max_str_digits() "
            "to increase the limit",
        ),
        (
            b'{"source_event_id": "a", "source_event_id": "b"}',
            "source_event_id",
            "source_event_id appears twice in the message",
        ),
        (
            b'{"command": "place_order"}',
            "source_event_id",
            "source_event_id is missing: every message needs its unique id",
        ),
        (
            {"source_event_id": ""},
            "source_event_id",
            "source_event_id='' must be a string of 1 to 200 characters without NUL",
        ),
        (
            {"source_event_id": 7},
            "source_event_id",
            "source_event_id=7 must be a string of 1 to 200 characters without NUL",
        ),
        (
            {"source_event_id": "x" * 201},
            "source_event_id",
            f"source_event_id='{'x' * 76}... must be a string of 1 to 200 characters without NUL",
        ),
        (
            {"source_event_id": "a\x00b"},
            "source_event_id",
            "source_event_id='a\\x00b' must be a string of 1 to 200 characters without NUL",
        ),
        (
            b'{"source_event_id": "a\\ud800"}',
            "source_event_id",
            "source_event_id='a\\ud800' must be a string of 1 to 200 characters without NUL",
        ),
        (
            {"source_event_id": "a"},
            "command",
            "command is missing: the message names no AuditTrail command",
        ),
        (
            {"source_event_id": "a", "command": ["place_order"]},
            "command",
            f"command=['place_order'] is not a command of audit.trading: use one of {TRADING}",
        ),
        (
            {"source_event_id": "a", "command": "record_risk_calculation"},
            "command",
            "command='record_risk_calculation' is not accepted on audit.trading; send it to "
            "audit.risk",
        ),
        (
            {"source_event_id": "a", "command": "record_slo_breach"},
            "command",
            f"command='record_slo_breach' is not a command of audit.trading: use one of {TRADING}",
        ),
        (
            {"source_event_id": "a", "command": "place_order"},
            "fields",
            "fields is missing: place_order needs its arguments",
        ),
        (
            {"source_event_id": "a", "command": "place_order", "fields": [1]},
            "fields",
            "fields=[1] must be a JSON object of place_order's arguments",
        ),
        (
            {**order(), "priority": "high"},
            "priority",
            "'priority' is not a key of a message: it has only source_event_id, command and fields",
        ),
        (
            {**order(), "": "high"},  # an empty key: the message is named, not a field ''
            "message",
            "'' is not a key of a message: it has only source_event_id, command and fields",
        ),
        (
            order(source_event_id="oms-1"),
            "source_event_id",
            "source_event_id belongs in the message, not in fields",
        ),
        (
            json.dumps(order()).replace('"side": "BUY"', '"side": "BUY", "side": "SELL"'),
            "side",
            "side appears twice in fields",
        ),
        (
            json.dumps(order()).replace("500", "Infinity"),
            "quantity",
            "quantity is Infinity, which JSON does not allow: send a finite number",
        ),
        (
            json.dumps(order()).replace("500", "-Infinity"),
            "quantity",
            "quantity is -Infinity, which JSON does not allow: send a finite number",
        ),
        (
            json.dumps(order(client_order_id=["C-1", 500])).replace("500]", "NaN]"),
            "client_order_id",
            "client_order_id holds NaN, which JSON does not allow: send a finite number",
        ),
        (
            json.dumps(order(client_order_id={"a": {"b": 1}})).replace('"b": 1', '"b": 1, "b": 2'),
            "client_order_id",
            "client_order_id holds the key 'b' twice",
        ),
        (
            json.dumps(order(actor="trader.\u00e9")).replace("\\u00e9", "\\udc00"),
            "actor",
            "actor holds an unpaired surrogate, which is not Unicode text",
        ),
        (
            order(colour="red"),
            "colour",
            "'colour' is not a field of place_order; its fields are actor, client_order_id, "
            "currency, decision_id, executing_entity_lei, execution_decision, "
            "investment_decision, isin, limit_price, occurred_at, quantity, side, "
            "trading_capacity, venue",
        ),
        (
            order(**{"": None}),
            "fields",
            "'' is not a field of place_order; its fields are actor, client_order_id, "
            "currency, decision_id, executing_entity_lei, execution_decision, "
            "investment_decision, isin, limit_price, occurred_at, quantity, side, "
            "trading_capacity, venue",
        ),
        (
            {**order(), "fields": {k: v for k, v in order()["fields"].items() if k != "isin"}},
            "isin",
            "isin is missing: place_order requires it",
        ),
        (
            {
                "source_event_id": "a",
                "command": "cancel_order",
                "fields": {
                    "client_order_id": "  ",
                    "reason": "r",
                    "actor": "a",
                    "occurred_at": "2026-03-02T09:00:00Z",
                },
            },  # fmt: skip
            "client_order_id",
            "client_order_id='  ' must not be empty",
        ),
        (
            {
                "source_event_id": "a",
                "command": "cancel_order",
                "fields": {"order_id": "5f0c3a8e-2b7d-4c1e-9a64-3d2f1b0e8c71"},
            },
            "order_id",
            "'order_id' is not a field of cancel_order; its fields are actor, client_order_id, "
            "occurred_at, reason",
        ),
    ],
)
def test_each_malformed_message_is_one_rejection_naming_its_field(
    body: dict[str, Any] | bytes | str, field: str, error: str
) -> None:
    message = raw(body)
    assert parse_message(message) == Rejection(message, field, error)


def test_a_message_read_from_another_topic_is_refused() -> None:
    rejected = parse(order(), topic="telemetry.requests")
    assert (rejected.field, rejected.error) == (
        "message",
        "message was read from 'telemetry.requests', which is not an audit topic "
        "(audit.trading, audit.risk, audit.changes, audit.activity, audit.models)",
    )


# --- properties ------------------------------------------------------------------------------

ALL_COMMANDS = sorted(c for names in AUDIT_COMMANDS.values() for c in names)
FIELD_NAMES = sorted(
    {name for c in ALL_COMMANDS for name in inspect.signature(getattr(AuditTrail, c)).parameters}
    | {key for key, _ in AGGREGATE_KEYS.values()}
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3)
        | st.dictionaries(st.text(), inner, min_size=1, max_size=3)
    ),
    max_leaves=8,
)
envelopes = st.dictionaries(
    st.sampled_from(["source_event_id", "command", "fields", "extra"]),
    json_values,
) | st.fixed_dictionaries(
    {
        "source_event_id": st.text(max_size=210) | st.integers(),
        "command": st.sampled_from([*ALL_COMMANDS, "drop_table"]),
        "fields": st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(), json_values),
    }
)


def _assert_well_formed(message: RawMessage, parsed: AuditCommand | Rejection) -> None:
    if isinstance(parsed, Rejection):
        assert parsed.message is message
        assert parsed.field and "\n" not in parsed.error and "\r" not in parsed.error
        assert len(parsed.headers()) == 5  # encodable: it can go to the dead-letter topic
        return
    # Whatever parses, the facade method accepts: no TypeError can come from the call.
    method = getattr(AuditTrail, parsed.command)
    positional = [] if parsed.aggregate_id is None else [parsed.aggregate_id]
    inspect.signature(method).bind(None, *positional, **parsed.arguments())
    assert parsed.message is message


@given(st.binary(max_size=400), st.sampled_from([*AUDIT_TOPICS, "other"]))
def test_any_bytes_give_a_command_or_a_rejection(value: bytes, topic: str) -> None:
    message = RawMessage(topic, 0, 0, None, value)
    _assert_well_formed(message, parse_message(message))


@given(envelopes, st.sampled_from(AUDIT_TOPICS))
def test_any_json_envelope_gives_a_callable_command_or_a_rejection(
    body: dict[str, Any], topic: str
) -> None:
    message = RawMessage(topic, 0, 0, None, json.dumps(body).encode())
    _assert_well_formed(message, parse_message(message))


@given(st.text(max_size=200))
def test_any_text_with_a_surrogate_or_not_is_handled(text: str) -> None:
    # json.dumps escapes what UTF-8 cannot hold, so lone surrogates reach the parser.
    body = json.dumps(order(actor=text, client_order_id=text))
    message = RawMessage("audit.trading", 0, 0, None, body.encode())
    _assert_well_formed(message, parse_message(message))
