"""OHLCV bars from market ticks (streams/bars.py): decoding, bars, late ticks, restarts.

Pure logic, exact values: every bar below is worked out by hand from its ticks, and a
property test checks the builder against a brute-force reference.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import InvalidField
from streams.bars import (
    FIELDS,
    TIMEFRAMES,
    Bar,
    BarBook,
    BarBuilder,
    LateTick,
    Tick,
    TickError,
    _checked_tick,
    _plain_tick,
    decode_tick,
)

SYMBOL = "DE0007164600"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a whole minute
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _tick(seconds: float, last: float, size: float = 1.0, symbol: str = SYMBOL) -> Tick:
    return Tick(symbol, last - 0.05, last + 0.05, last, size, _at(seconds))


def _bar(
    timeframe: str, start: float, ohlc: tuple[float, float, float, float], volume: float,
    ticks: int, first: float, last: float, symbol: str = SYMBOL,
) -> Bar:  # fmt: skip
    return Bar(symbol, timeframe, _at(start), *ohlc, volume, ticks, _at(first), _at(last))


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


# --- decoding ------------------------------------------------------------------------------

GOOD = {
    "symbol": " DE0007164600 ",
    "bid": 101.25,
    "ask": "101.30",
    "last": 101,
    "size": 300,
    "time": "2026-03-02T10:00:00.125+01:00",
}


def test_a_good_tick_is_decoded_with_floats_and_a_utc_time() -> None:
    tick = decode_tick(_encode(GOOD))
    assert tick == Tick(SYMBOL, 101.25, 101.3, 101.0, 300.0, _at(0.125))
    assert [type(v) for v in (tick.bid, tick.ask, tick.last, tick.size)] == [float] * 4
    assert tick.time.tzinfo is UTC


def test_the_usual_message_takes_the_fast_path() -> None:
    document = {"symbol": SYMBOL, "bid": 101.25, "ask": 101.3, "last": 101.25, "size": 37.0,
                "time": "2026-03-02T09:00:00.5Z"}  # fmt: skip
    assert _plain_tick(document) == Tick(SYMBOL, 101.25, 101.3, 101.25, 37.0, _at(0.5))
    assert _plain_tick(GOOD) is None  # a string ask: the full checks read it


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        ({"bid": 0}, "bid", "bid=0 must be > 0"),
        ({"last": -101.5}, "last", "last=-101.5 must be > 0"),
        ({"bid": -0.0}, "bid", "bid=-0.0 must be > 0"),
        ({"bid": "NaN"}, "bid", "bid='NaN' must be finite"),
        ({"ask": "-Infinity"}, "ask", "ask='-Infinity' must be finite"),
        ({"last": "1e999"}, "last", "last='1e999' must be finite"),
        ({"bid": "abc"}, "bid", "bid='abc' is not a number"),
        ({"bid": "1_000"}, "bid", "bid='1_000' is not a number"),
        ({"bid": "١٠١"}, "bid", "bid='١٠١' is not a number"),  # Arabic-Indic digits
        ({"bid": True}, "bid", "bid=True is a JSON boolean, not a number"),
        ({"last": None}, "last", "last=None is a JSON null, not a number"),
        ({"size": [300]}, "size", "size=[300] is a JSON array, not a number"),
        ({"size": -1}, "size", "size=-1 must be >= 0"),
        ({"size": "1e400"}, "size", "size='1e400' must be finite"),
        (
            {"bid": 101.5, "ask": 101.25},
            "ask",
            "ask=101.25 is below bid=101.5: a crossed quote is refused",
        ),
        ({"symbol": "  "}, "symbol", "symbol='  ' must not be empty"),
        ({"symbol": 7}, "symbol", "symbol=7 is a JSON number, not a string"),
        ({"symbol": "x" * 65}, "symbol", f"symbol='{'x' * 65}' is longer than 64 characters"),
        (
            {"symbol": "DE\x00164600"},
            "symbol",
            "symbol='DE\\x00164600' has the non-printable character '\\x00' at 2",
        ),
        (
            {"symbol": "DE\u200b164600"},
            "symbol",
            "symbol='DE\\u200b164600' has the non-printable character '\\u200b' at 2",
        ),
        (
            {"time": "2026-03-02T09:00:00"},
            "time",
            "time='2026-03-02T09:00:00' has no UTC offset; add one (Z for UTC)",
        ),
        ({"time": "yesterday"}, "time", "time='yesterday' is not an ISO 8601 timestamp"),
        (
            {"time": "2026-03-02T24:00:00Z"},
            "time",
            "time='2026-03-02T24:00:00Z' is not an ISO 8601 timestamp",
        ),
        ({"time": 1772442000}, "time", "time=1772442000 is a JSON number, not an ISO 8601 string"),
        (
            {"time": "9999-12-31T23:59:59-05:00"},
            "time",
            "time='9999-12-31T23:59:59-05:00' is out of range once converted to UTC",
        ),
        (
            {"time": "0001-01-01T00:30:00+01:00"},
            "time",
            "time='0001-01-01T00:30:00+01:00' is out of range once converted to UTC",
        ),
        (
            {"venue": "XETR"},
            "venue",
            "venue='XETR' is not a field of a tick (symbol, bid, ask, last, size, time)",
        ),
    ],
)
def test_a_bad_field_is_named_with_its_value(
    override: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(TickError) as caught:
        decode_tick(_encode({**GOOD, **override}))
    assert str(caught.value) == message
    assert (caught.value.field, caught.value.value) == (field, {**GOOD, **override}[field])
    assert isinstance(caught.value, InvalidField) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize("name", ["symbol", "bid", "ask", "last", "size", "time"])
def test_a_missing_field_is_named(name: str) -> None:
    document = {key: value for key, value in GOOD.items() if key != name}
    with pytest.raises(TickError) as caught:
        decode_tick(_encode(document))
    assert (str(caught.value), caught.value.field) == (f"{name}=None is missing", name)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            b'{"symbol": "DE0007164600",',
            'message=b\'{"symbol": "DE0007164600",\' is not JSON: unexpected end of data: '
            "line 1 column 27 (char 26)",
        ),
        (
            b"\xff{}",
            "message=b'\\xff{}' is not JSON: str is not valid UTF-8: surrogates not allowed: "
            "line 1 column 1 (char 0)",
        ),
        (b"[1, 2]", "message=b'[1, 2]' is a JSON array, not an object"),
        (b"null", "message=b'null' is a JSON null, not an object"),
    ],
)
def test_a_message_that_is_not_a_json_object_is_named(value: bytes, message: str) -> None:
    with pytest.raises(TickError) as caught:
        decode_tick(value)
    assert (str(caught.value), caught.value.field, caught.value.value) == (
        message,
        "message",
        value,
    )


def test_deep_nesting_and_huge_numbers_are_refused_as_the_message() -> None:
    deep = b'{"symbol": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(TickError, match=r"is not JSON: depth limit exceeded") as caught:
        decode_tick(deep)
    assert caught.value.field == "message"
    huge = b'{"bid": 1e400}'
    with pytest.raises(
        TickError, match=r"is not JSON: number is infinity when parsed as double"
    ) as caught:
        decode_tick(huge)
    assert caught.value.field == "message"


# A usual message (mostly good), then up to two fields replaced by anything JSON can carry,
# or one dropped.
_TIMES = st.sampled_from([
    "2026-03-02T09:00:00Z", " 2026-03-02T10:00:00.125+01:00 ", "2026-03-02T09:00:00.1234567Z",
    "20260302T090000Z", "2026-03-02T09:00:00", "2026-03-02", "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00+01:00", "", "now",
])  # fmt: skip
_SYMBOLS = st.sampled_from([f" {SYMBOL} ", "", " ", "x" * 64, "x" * 65, "A\x00", "É"])


@st.composite
def _messages(draw: st.DrawFn) -> dict[str, object]:
    def spelled(number: float) -> object:  # as a JSON float, int or numeric string
        spellings: list[Callable[[float], object]] = [float, round, repr, float, float]
        return draw(st.sampled_from(spellings))(number)

    bid = draw(st.floats(0.01, 1e6))
    ask = bid + draw(st.sampled_from([0.0, 0.01, 0.5, -0.01]))  # now and then crossed
    size = draw(st.one_of(st.floats(0, 1e6), st.sampled_from([-0.0, 0.4])))
    return {
        "symbol": draw(st.one_of(st.just(SYMBOL), _SYMBOLS)),
        "bid": spelled(bid), "ask": spelled(ask), "last": spelled(draw(st.floats(0.01, 1e6))),
        "size": spelled(size), "time": draw(st.one_of(st.just("2026-03-02T09:00:00Z"), _TIMES)),
    }  # fmt: skip


_ANYTHING = st.one_of(
    st.floats(),
    st.integers(-5, 10**20),
    st.sampled_from([0.0, -0.0, 5e-324, 1e308, 10**400, " 1e3 ", "nan", "-inf", "1_0", "x"]),
    st.none(),
    st.booleans(),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=1),
)


@settings(max_examples=500)
@given(
    message=_messages(),
    changes=st.one_of(
        st.just({}), st.dictionaries(st.sampled_from([*FIELDS, "venue"]), _ANYTHING, max_size=2)
    ),
    drop=st.one_of(st.none(), st.sampled_from(FIELDS)),
)
def test_the_fast_path_makes_the_tick_the_full_checks_make(
    message: dict[str, object], changes: dict[str, object], drop: str | None
) -> None:
    m = {**message, **changes}
    if drop is not None:
        del m[drop]
    fast = _plain_tick(m)
    try:
        checked = _checked_tick(m)
    except TickError:
        assert fast is None  # the full checks name what is wrong
        return
    if fast is not None:
        assert repr(fast) == repr(checked)  # repr: the same floats, -0.0 included, and zone
    assert repr(decode_tick(json.dumps(m).encode())) == repr(checked)


# --- bars ----------------------------------------------------------------------------------


def test_timeframes_are_one_second_and_one_minute_finest_first() -> None:
    assert list(TIMEFRAMES.items()) == [("1s", 1), ("1m", 60)]


def test_ticks_across_two_seconds_and_a_minute_boundary_make_exact_bars() -> None:
    book = BarBook()
    closed = [
        book.add(_tick(58.1, 101.00, 100)),
        book.add(_tick(58.9, 101.20, 50)),
        book.add(_tick(58.5, 100.90, 25)),  # earlier than the one before: inside the bar
        book.add(_tick(59.2, 101.10, 10)),  # closes 09:00:58
        book.add(_tick(59.7, 101.30, 5)),
        book.add(_tick(60.0, 101.40, 20)),  # closes 09:00:59 and the 09:00 minute
        book.add(_tick(60.4, 101.35, 30)),
    ]
    second_58 = _bar("1s", 58, (101.0, 101.2, 100.9, 101.2), 175.0, 3, 58.1, 58.9)
    second_59 = _bar("1s", 59, (101.1, 101.3, 101.1, 101.3), 15.0, 2, 59.2, 59.7)
    minute_0 = _bar("1m", 0, (101.0, 101.3, 100.9, 101.3), 190.0, 5, 58.1, 59.7)
    assert closed == [[], [], [], [second_58], [], [second_59, minute_0], []]
    assert (second_58.end, minute_0.end) == (_at(59), _at(60))
    assert book.open_bars() == [
        _bar("1s", 60, (101.4, 101.4, 101.35, 101.35), 50.0, 2, 60.0, 60.4),
        _bar("1m", 60, (101.4, 101.4, 101.35, 101.35), 50.0, 2, 60.0, 60.4),
    ]


def test_open_and_close_follow_event_time_and_ties_follow_arrival() -> None:
    builder = BarBuilder(SYMBOL)
    for seconds, last in [(0.5, 10.0), (0.2, 11.0), (0.2, 12.0), (0.8, 13.0), (0.8, 14.0),
                          (0.3, 9.0)]:  # fmt: skip
        assert builder.add(_tick(seconds, last)) == []
    # open: 11.0 at 0.2 s, the first of the two to arrive; close: 14.0 at 0.8 s, the last
    assert builder.open_bars() == [
        _bar("1s", 0, (11.0, 14.0, 9.0, 14.0), 6.0, 6, 0.2, 0.8),
        _bar("1m", 0, (11.0, 14.0, 9.0, 14.0), 6.0, 6, 0.2, 0.8),
    ]


def test_a_late_tick_raises_and_changes_no_bar() -> None:
    book = BarBook()
    for seconds in (0.5, 1.2, 2.3):
        book.add(_tick(seconds, 100.0))
    before = [bar.to_json() for bar in book.open_bars()]
    late = _tick(1.25, 99.0)
    with pytest.raises(LateTick) as caught:
        book.add(late)
    assert str(caught.value) == (
        "time='2026-03-02T09:00:01.250000Z' is late: "
        "the 1s bar 2026-03-02T09:00:01Z of DE0007164600 is closed"
    )
    assert (caught.value.field, caught.value.tick, caught.value.timeframe) == ("time", late, "1s")
    assert caught.value.closed == _at(1)
    assert isinstance(caught.value, TickError)
    # The 09:00 minute is still open, yet it does not take the tick either.
    assert [bar.to_json() for bar in book.open_bars()] == before
    assert book.add(_tick(2.0, 100.5)) == []  # the open second still takes its ticks


def test_gaps_make_no_empty_bars() -> None:
    book = BarBook()
    assert book.add(_tick(0.5, 100.0)) == []
    assert book.add(_tick(4.5, 101.0)) == [
        _bar("1s", 0, (100.0, 100.0, 100.0, 100.0), 1.0, 1, 0.5, 0.5)
    ]
    assert book.add(_tick(190.0, 102.0)) == [
        _bar("1s", 4, (101.0, 101.0, 101.0, 101.0), 1.0, 1, 4.5, 4.5),
        _bar("1m", 0, (100.0, 101.0, 100.0, 101.0), 2.0, 2, 0.5, 4.5),
    ]
    assert [(bar.timeframe, bar.start) for bar in book.open_bars()] == [
        ("1s", _at(190)), ("1m", _at(180)),
    ]  # fmt: skip


def test_symbols_have_their_own_bars() -> None:
    book = BarBook()
    book.add(_tick(0.5, 100.0, symbol="US0378331005"))
    book.add(_tick(0.7, 50.0))
    assert book.add(_tick(1.5, 51.0)) == [_bar("1s", 0, (50.0,) * 4, 1.0, 1, 0.7, 0.7)]
    assert book.add(_tick(0.9, 101.0, symbol="US0378331005")) == []  # not late for its own
    assert [(bar.symbol, bar.timeframe) for bar in book.open_bars()] == [
        (SYMBOL, "1s"), (SYMBOL, "1m"), ("US0378331005", "1s"), ("US0378331005", "1m"),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="a tick of US0378331005 given to the bars of DE0007"):
        BarBuilder(SYMBOL).add(_tick(0, 1.0, symbol="US0378331005"))


def test_bars_start_at_the_exact_floor_even_at_the_ends_of_the_calendar() -> None:
    book = BarBook()
    # timestamp() is a float: it rounds this one up to the year 10000.
    book.add(Tick(SYMBOL, 1.0, 1.0, 1.0, 1.0, datetime(9999, 12, 31, 23, 59, 59, 999999, UTC)))
    book.add(Tick("X", 1.0, 1.0, 1.0, 1.0, datetime(1969, 12, 31, 23, 59, 59, 500000, UTC)))
    assert [bar.start for bar in book.open_bars()] == [
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, tzinfo=UTC),
    ]  # fmt: skip


def test_open_bars_are_copies() -> None:
    book = BarBook()
    book.add(_tick(0.5, 100.0))
    for bar in book.open_bars():
        bar.close = 0.0  # as a careless caller might
    assert [bar.close for bar in book.open_bars()] == [100.0, 100.0]
    held = book.open_bars()
    restored = BarBook.restore(held)
    held[0].close = 0.0
    assert [bar.close for bar in restored.open_bars()] == [100.0, 100.0]


SEQUENCE = [
    _tick(58.1, 101.00, 100), _tick(58.9, 101.20, 50), _tick(58.5, 100.90, 25),
    _tick(59.2, 101.10, 10), _tick(58.95, 99.0, 1),  # late
    _tick(59.7, 101.30, 5), _tick(60.0, 101.40, 20), _tick(60.4, 101.35, 30),
    _tick(61.0, 101.5, 0.1, "US0378331005"), _tick(185.25, 102.0, 0.2), _tick(185.0, 101.9, 0.3),
    _tick(70.0, 101.6, 0.7, "US0378331005"),
]  # fmt: skip


def _run(book: BarBook, ticks: Sequence[Tick]) -> list[Bar | str]:
    """Every closed bar, and "late" for each late tick, in order."""
    out: list[Bar | str] = []
    for tick in ticks:
        try:
            out.extend(book.add(tick))
        except LateTick:
            out.append("late")
    return out


def _restarted(book: BarBook) -> BarBook:
    """The book a restarted worker rebuilds from its changelog table."""
    return BarBook.restore(Bar.from_json(bar.to_json()) for bar in book.open_bars())


def test_a_restart_at_any_tick_continues_identically() -> None:
    whole = BarBook()
    expected = _run(whole, SEQUENCE)
    assert expected.count("late") == 1 and len(expected) == 7
    for split in range(len(SEQUENCE) + 1):
        book = BarBook()
        before = _run(book, SEQUENCE[:split])
        restarted = _restarted(book)
        assert before + _run(restarted, SEQUENCE[split:]) == expected, split
        assert restarted.open_bars() == whole.open_bars()


def test_open_bars_of_some_symbols_only() -> None:
    book = BarBook()
    book.add(_tick(0.5, 100.0, symbol="B"))
    book.add(_tick(0.6, 50.0, symbol="A"))
    assert [(b.symbol, b.timeframe) for b in book.open_bars()] == [
        ("A", "1s"), ("A", "1m"), ("B", "1s"), ("B", "1m"),
    ]  # fmt: skip
    assert [(b.symbol, b.close) for b in book.open_bars({"B", "unknown"})] == [
        ("B", 100.0), ("B", 100.0),
    ]  # fmt: skip
    assert book.open_bars([]) == []


def test_restore_refuses_bars_that_are_not_one_open_bar_per_timeframe() -> None:
    book = BarBook()
    book.add(_tick(0.5, 100.0))
    second, minute = book.open_bars()
    assert BarBuilder.restore(SYMBOL, []).open_bars() == []
    with pytest.raises(
        ValueError, match=r"^DE0007164600: open bars of 1s given; need one of each of 1s, 1m$"
    ):
        BarBuilder.restore(SYMBOL, [second])
    with pytest.raises(ValueError, match=r"open bars of 1s, 1m, 1s given"):
        BarBuilder.restore(SYMBOL, [second, minute, second])
    minute.last_time = _at(0.25)  # not the newest tick the 1 s bar holds
    with pytest.raises(ValueError, match=r"is not an open 1m bar of DE0007164600"):
        BarBuilder.restore(SYMBOL, [second, minute])


# --- stored bars -----------------------------------------------------------------------------


def test_a_bar_is_stored_as_compact_json() -> None:
    bar = _bar("1m", 60, (101.4, 101.4, 101.35, 0.1 + 0.2), 50.0, 2, 60.0, 60.4, symbol="Ä")
    assert bar.to_json() == (
        '{"symbol":"Ä","timeframe":"1m","start":"2026-03-02T09:01:00Z","open":101.4,'
        '"high":101.4,"low":101.35,"close":0.30000000000000004,"volume":50.0,"ticks":2,'
        '"first_time":"2026-03-02T09:01:00Z","last_time":"2026-03-02T09:01:00.400000Z"}'
    )
    assert Bar.from_json(bar.to_json().encode()) == bar


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ticks": 2.0}, "stored bar: ticks=2.0 is not a int"),
        ({"open": "101.4"}, "stored bar: open='101.4' is not a float"),
        (
            {"start": "2026-03-02T09:01:00"},
            "stored bar: start='2026-03-02T09:01:00' is not an ISO 8601 time with an offset",
        ),  # fmt: skip
        (
            {"start": "2026-03-02T09:01:30Z"},
            "stored bar: start='2026-03-02T09:01:30Z' does not "
            "start a '1m' bar (timeframes: 1s, 1m)",
        ),  # fmt: skip
        (
            {"timeframe": "5m"},
            "stored bar: start='2026-03-02T09:01:00Z' does not start a '5m' "
            "bar (timeframes: 1s, 1m)",
        ),  # fmt: skip
    ],
)
def test_a_stored_bar_that_is_not_one_is_refused(change: dict[str, object], message: str) -> None:
    stored = json.loads(_bar("1m", 60, (1.0,) * 4, 1.0, 1, 60.0, 60.0).to_json())
    with pytest.raises(ValueError) as caught:
        Bar.from_json(json.dumps({**stored, **change}))
    assert str(caught.value) == message


_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
_MOMENTS = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
).map(lambda moment: moment.replace(fold=0))  # fold means nothing in UTC


@given(
    symbol=st.text(min_size=1, max_size=64),
    timeframe=st.sampled_from(list(TIMEFRAMES)),
    start=_MOMENTS,
    prices=st.tuples(_FLOATS, _FLOATS, _FLOATS, _FLOATS, _FLOATS),
    ticks=st.integers(1, 10**9),
    first=_MOMENTS,
    last=_MOMENTS,
)
def test_stored_bars_come_back_exactly(
    symbol: str, timeframe: str, start: datetime,
    prices: tuple[float, float, float, float, float], ticks: int,
    first: datetime, last: datetime,
) -> None:  # fmt: skip
    length = TIMEFRAMES[timeframe]
    second = (start - EPOCH) // timedelta(seconds=1)
    aligned = EPOCH + timedelta(seconds=second - second % length)
    bar = Bar(symbol, timeframe, aligned, *prices, ticks, first, last)
    back = Bar.from_json(bar.to_json())
    assert repr(back) == repr(bar)  # repr: every float bit for bit, -0.0 included


# --- the reference -------------------------------------------------------------------------


def _reference(ticks: Sequence[Tick]) -> tuple[set[int], list[Bar], list[Bar]]:
    """Late tick indexes, closed bars and open bars, by brute force from the rules.

    A tick is late when its second is before the second of the newest earlier tick of its
    symbol; the others are grouped by (symbol, timeframe, floor(time / length)); per symbol
    and timeframe the group holding the newest tick is open, the others are closed.
    """

    def second(moment: datetime) -> int:
        return (moment - EPOCH) // timedelta(seconds=1)

    late = {
        i for i, tick in enumerate(ticks)
        if any(u.symbol == tick.symbol and second(u.time) > second(tick.time) for u in ticks[:i])
    }  # fmt: skip
    groups: dict[tuple[str, int, int], list[tuple[int, Tick]]] = {}
    for i, tick in enumerate(ticks):
        if i in late:
            continue
        for finest_first, length in enumerate(TIMEFRAMES.values()):
            key = (tick.symbol, finest_first, second(tick.time) // length * length)
            groups.setdefault(key, []).append((i, tick))
    bars: dict[tuple[str, int], list[Bar]] = {}
    for (symbol, finest_first, start), members in sorted(groups.items()):
        timeframe = list(TIMEFRAMES)[finest_first]
        opening = min(members, key=lambda m: (m[1].time, m[0]))[1]
        closing = max(members, key=lambda m: (m[1].time, m[0]))[1]
        lasts = [tick.last for _, tick in members]
        volume = 0.0
        for _, tick in members:
            volume += tick.size
        bars.setdefault((symbol, finest_first), []).append(
            Bar(symbol, timeframe, EPOCH + timedelta(seconds=start), opening.last, max(lasts),
                min(lasts), closing.last, volume, len(members), opening.time, closing.time)
        )  # fmt: skip
    closed = [bar for held in bars.values() for bar in held[:-1]]
    open_ = [held[-1] for held in bars.values()]  # by symbol, finest first
    return late, closed, open_


_TICKS = st.lists(
    st.tuples(
        st.sampled_from([SYMBOL, "US0378331005"]),
        st.integers(-6, 20),  # quarter seconds after the symbol's previous tick: some go back
        st.sampled_from([99.5, 100.0, 100.25, 100.5, 101.0, 101.75]),
        st.sampled_from([0.0, 0.1, 0.2, 1.0, 2.5, 300.0]),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(steps=_TICKS)
def test_bars_equal_a_brute_force_reference_restart_or_not(
    steps: list[tuple[str, int, float, float]],
) -> None:
    clocks: dict[str, float] = {}
    ticks = []
    for symbol, quarters, last, size in steps:
        clocks[symbol] = max(0.0, clocks.get(symbol, 40.0) + quarters / 4)  # from 09:00:40
        ticks.append(_tick(clocks[symbol], last, size, symbol))
    late, closed, open_ = _reference(ticks)
    book = BarBook()
    seen_late: set[int] = set()
    seen_closed: list[Bar] = []
    for i, tick in enumerate(ticks):
        try:
            bars = book.add(tick)
        except LateTick:
            seen_late.add(i)
            continue
        assert [bar.timeframe for bar in bars] == list(TIMEFRAMES)[: len(bars)]  # finest first
        assert {bar.symbol for bar in bars} <= {tick.symbol}
        seen_closed.extend(bars)
    assert seen_late == late
    order = list(TIMEFRAMES)
    assert sorted(seen_closed, key=lambda b: (b.symbol, order.index(b.timeframe))) == sorted(
        closed, key=lambda b: (b.symbol, order.index(b.timeframe))
    )  # the same bars, each timeframe's in start order
    assert repr(book.open_bars()) == repr(open_)
    # A restart after any tick, from the stored open bars, ends with the same bars.
    expected = _run(BarBook(), ticks)
    for split in range(0, len(ticks) + 1, 3):
        restarted = BarBook()
        before = _run(restarted, ticks[:split])
        assert before + _run(_restarted(restarted), ticks[split:]) == expected


def test_the_reference_agrees_on_the_hand_made_sequence() -> None:
    late, closed, open_ = _reference(SEQUENCE)
    assert late == {4}
    assert [bar for bar in _run(BarBook(), SEQUENCE) if bar != "late"] == sorted(
        closed, key=lambda b: (b.symbol != SYMBOL, b.end, b.timeframe != "1s")
    )
    assert [(bar.symbol, bar.timeframe, bar.start) for bar in open_] == [
        (SYMBOL, "1s", _at(185)), (SYMBOL, "1m", _at(180)),
        ("US0378331005", "1s", _at(70)), ("US0378331005", "1m", _at(60)),
    ]  # fmt: skip
