"""OHLCV bars from market ticks, per symbol and timeframe (pure: no Kafka, no database).

The bars agent feeds :func:`decode_tick` the values of ``market.ticks`` and a
:class:`BarBook` the ticks; it sends the bars the book closes to their topic, a
:class:`TickError` (a :class:`LateTick` included) to the dead-letter topic with its reason,
and keeps :meth:`BarBook.open_bars` in a changelog table at the end of each batch
(:meth:`Bar.to_json`), to :meth:`BarBook.restore` the book after a restart.

**The message.** A record value is one UTF-8 JSON object with exactly these keys::

    {"symbol": "DE0007164600", "bid": 101.25, "ask": 101.3, "last": 101.25,
     "size": 300, "time": "2026-03-02T09:00:00.123456Z"}

* ``symbol``: a string; surrounding whitespace is stripped; then 1 to 64 characters, all
  printable (``str.isprintable``: none of the Unicode categories Other, i.e. control,
  format, private use, unassigned, or Separator, except the ASCII space).
* ``bid``, ``ask``, ``last``, ``size``: a JSON number (integer or fraction) or a numeric
  string (optional sign, decimal digits with an optional fraction and exponent, e.g.
  ``"101.25"``, ``"1e3"``; surrounding whitespace ignored), read as a float. Each must be
  finite; the prices ``bid``, ``ask`` and ``last`` > 0, ``size`` >= 0 (-0 is read as 0);
  ``bid`` <= ``ask`` (a crossed quote is refused, a locked one is taken). ``last`` (the
  last trade) may lie outside the quote.
* ``time``: the event time, an ISO 8601 string with a UTC offset (``Z`` or ``+01:00``), as
  Python 3.11's ``datetime.fromisoformat`` reads it (digits past microseconds are
  dropped); converted to UTC, and refused if the conversion leaves years 1-9999.

Anything else is refused with a :class:`TickError` naming the field and its value: a
missing key, a key not listed above (so that schema drift shows), a value of the wrong
type, or, as field ``message``, a value that is not UTF-8 JSON (RFC 8259: ``NaN`` and
``Infinity`` are not JSON), not an object, or nested over 1,024 deep. Decoding is
orjson's: an integer beyond 64 bits reads as a float, and with duplicate keys the last one
counts (detecting them would cost more than the rest of the decoding).

**The bars.** Timeframes are :data:`TIMEFRAMES` (1 s, 1 min). A bar covers the half-open
interval ``[start, start + length)``, ``start`` aligned to the timeframe (the floor of the
event time's epoch seconds to a multiple of the length). The event time decides, never the
arrival order:

* ``open`` is the ``last`` price of the tick with the earliest time (ties: the first to
  arrive), ``close`` that of the tick with the latest time (ties: the last to arrive);
  ``first_time`` and ``last_time`` are those times. ``high`` and ``low`` are the max and
  min of ``last``, ``volume`` the float sum of ``size`` in arrival order, ``ticks`` the
  count. Out-of-order ticks inside the open bar are simply taken.
* Each symbol has one open bar per timeframe: the bar holding its newest tick. A tick
  with a time at or after the end of a timeframe's open bar closes it and opens the
  tick's bar; the closed bars are returned finest first. A timeframe with no tick has no
  bar (gaps make no empty bars), and a bar closes only when a newer tick of its symbol
  arrives.
* A tick is **late** when its time is before the start of the symbol's open 1 s bar: its
  1 s bar is already closed. A late tick goes into no bar at all, not even the still-open
  1 min bar, so the 1 s and 1 min bars always cover the same ticks. :meth:`BarBook.add`
  raises :class:`LateTick` (field ``time``) and changes nothing; the worker dead-letters it.
* A book restored from its open bars (one per timeframe for each symbol, as
  :meth:`BarBook.open_bars` gave them) goes on exactly as the book they came from.

Cost, measured on the development container (CPython 3.11, 2 shared cores, best of 5 to
9 ``timeit`` runs; 200,000 realistic ticks over 200 symbols at 50,000 ticks/s)::

    decode_tick    ~2.5-3 us a tick: orjson.loads ~0.6 us, the fast path ~2 us (building
                   the frozen Tick ~0.75 us of it); numeric strings take the full checks
    BarBook.add    0.8-1 us a tick; 2-2.5 us for one that opens a new 1 s bar

A note, not a test: performance targets live in bench/.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, TypeVar

import orjson

from domain.errors import InvalidField

__all__ = [
    "FIELDS",
    "TIMEFRAMES",
    "Bar",
    "BarBook",
    "BarBuilder",
    "LateTick",
    "Tick",
    "TickError",
    "decode_tick",
]

# Timeframe name -> length in seconds, finest first.
TIMEFRAMES: Mapping[str, int] = {"1s": 1, "1m": 60}
_FRAMES = tuple(TIMEFRAMES.items())
FIELDS = ("symbol", "bid", "ask", "last", "size", "time")
_MAX_SYMBOL = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INF = math.inf
_T = TypeVar("_T")
_JSON_KINDS = {
    bool: "boolean", int: "number", float: "number", str: "string",
    list: "array", dict: "object", type(None): "null",
}  # fmt: skip


def _kind(value: object) -> str:
    return _JSON_KINDS.get(type(value), type(value).__name__)


def _iso(moment: datetime) -> str:
    """``2026-03-02T09:00:01Z``, with ``.ffffff`` when there are microseconds."""
    return moment.isoformat().replace("+00:00", "Z")


# --- ticks ---------------------------------------------------------------------------------


class TickError(InvalidField):
    """A tick is refused; the message names the field and its value.

    >>> str(TickError("bid", 0, "must be > 0"))
    'bid=0 must be > 0'
    """


class Tick(NamedTuple):
    """One market tick. Built unchecked for speed; use decode_tick for input (a named
    tuple: one is made per tick, in under half the time of a dataclass).

    ``time`` is the event time, an aware datetime in UTC.
    """

    symbol: str
    bid: float
    ask: float
    last: float
    size: float
    time: datetime


def decode_tick(value: bytes) -> Tick:
    """The checked tick of a ``market.ticks`` record value, or TickError naming the field.

    >>> decode_tick(b'{"symbol": "X", "bid": 2, "ask": 1, "last": 1, "size": 1, "time": "Z"}')
    Traceback (most recent call last):
    ...
    streams.bars.TickError: ask=1 is below bid=2: a crossed quote is refused
    """
    try:
        document = orjson.loads(value)  # ~0.6 us; json.loads takes ~3
    except orjson.JSONDecodeError as exc:  # not UTF-8 or JSON, NaN, nested over 1,024 deep
        raise TickError("message", value, f"is not JSON: {exc}") from None
    if type(document) is not dict:
        raise TickError("message", value, f"is a JSON {_kind(document)}, not an object")
    tick = _plain_tick(document)
    return tick if tick is not None else _checked_tick(document)


def _plain_tick(m: dict[str, Any]) -> Tick | None:
    """The tick of the usual message (numbers as JSON numbers, a string time), exactly as
    the full checks make it; None for anything else, which the full checks then accept or
    name."""
    if len(m) != len(FIELDS):
        return None
    symbol, bid, ask, last, size, moment = (
        m.get("symbol"), m.get("bid"), m.get("ask"), m.get("last"), m.get("size"), m.get("time")
    )  # fmt: skip
    if not (
        type(symbol) is str
        and type(moment) is str
        and (type(bid) is float or type(bid) is int)
        and (type(ask) is float or type(ask) is int)
        and (type(last) is float or type(last) is int)
        and (type(size) is float or type(size) is int)
    ):
        return None
    try:
        # + 0.0: an int becomes a float (OverflowError past 1.8e308) and -0.0 becomes 0.0
        bid, ask, last, size = bid + 0.0, ask + 0.0, last + 0.0, size + 0.0
        if not (0.0 < bid <= ask < _INF and 0.0 < last < _INF and 0.0 <= size < _INF):
            return None
        symbol = symbol.strip()
        if not (0 < len(symbol) <= _MAX_SYMBOL and symbol.isprintable()):
            return None
        parsed = datetime.fromisoformat(moment.strip())
        if parsed.utcoffset() is None:
            return None
        return Tick(symbol, bid, ask, last, size, parsed.astimezone(UTC))
    except (ValueError, OverflowError):
        return None


def _checked_tick(m: dict[str, Any]) -> Tick:
    """:func:`decode_tick` of a decoded object, field by field."""
    for name in FIELDS:
        if name not in m:
            raise TickError(name, None, "is missing")
    for name in m:
        if name not in FIELDS:
            raise TickError(name, m[name], f"is not a field of a tick ({', '.join(FIELDS)})")
    symbol = _symbol(m["symbol"])
    bid = _number("bid", m["bid"], price=True)
    ask = _number("ask", m["ask"], price=True)
    if bid > ask:
        raise TickError("ask", m["ask"], f"is below bid={m['bid']!r}: a crossed quote is refused")
    last = _number("last", m["last"], price=True)
    size = _number("size", m["size"], price=False)
    return Tick(symbol, bid, ask, last, size, _utc_time(m["time"]))


def _symbol(value: object) -> str:
    if type(value) is not str:
        raise TickError("symbol", value, f"is a JSON {_kind(value)}, not a string")
    text = value.strip()
    if not text:
        raise TickError("symbol", value, "must not be empty")
    if len(text) > _MAX_SYMBOL:
        raise TickError("symbol", value, f"is longer than {_MAX_SYMBOL} characters")
    if not text.isprintable():
        at, char = next((i, c) for i, c in enumerate(text) if not c.isprintable())
        raise TickError("symbol", value, f"has the non-printable character {char!r} at {at}")
    return text


def _number(name: str, value: object, *, price: bool) -> float:
    """A price (> 0) or a size (>= 0) as a float."""
    number: float
    if type(value) is float:
        number = value
    elif type(value) is int:
        try:
            number = float(value)
        except OverflowError:
            raise TickError(name, value, "is too large for a float") from None
    elif type(value) is str:
        text = value.strip()
        if not text.isascii() or "_" in text:  # float() reads "1_000" and non-ASCII digits
            raise TickError(name, value, "is not a number")
        try:
            number = float(text)  # "nan" and "inf" too (refused below), and inf past 1.8e308
        except ValueError:
            raise TickError(name, value, "is not a number") from None
    else:
        raise TickError(name, value, f"is a JSON {_kind(value)}, not a number")
    if not math.isfinite(number):
        raise TickError(name, value, "must be finite")
    if price and not number > 0:
        raise TickError(name, value, "must be > 0")
    if number < 0:
        raise TickError(name, value, "must be >= 0")
    return number + 0.0  # -0.0 is 0.0


def _utc_time(value: object) -> datetime:
    if type(value) is not str:
        raise TickError("time", value, f"is a JSON {_kind(value)}, not an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value.strip())
    except (ValueError, OverflowError):
        raise TickError("time", value, "is not an ISO 8601 timestamp") from None
    if moment.utcoffset() is None:
        raise TickError("time", value, "has no UTC offset; add one (Z for UTC)")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-05:00: past the year 9999 in UTC
        raise TickError("time", value, "is out of range once converted to UTC") from None


class LateTick(TickError):
    """A tick whose 1 s bar is already closed: it goes into no bar.

    ``closed`` is the start of that bar (the tick's time, floored to the second).
    """

    def __init__(self, tick: Tick, timeframe: str, closed: datetime) -> None:
        self.tick = tick
        self.timeframe = timeframe
        self.closed = closed
        reason = f"is late: the {timeframe} bar {_iso(closed)} of {tick.symbol} is closed"
        super().__init__("time", _iso(tick.time), reason)


# --- bars ----------------------------------------------------------------------------------

_BAR_FIELDS = (
    "symbol", "timeframe", "start", "open", "high", "low", "close", "volume", "ticks",
    "first_time", "last_time",
)  # fmt: skip


@dataclass(slots=True)
class Bar:
    """One OHLCV bar: the ticks of ``symbol`` with a time in ``[start, end)``."""

    symbol: str
    timeframe: str  # a key of TIMEFRAMES
    start: datetime  # aware UTC, aligned to the timeframe
    open: float
    high: float
    low: float
    close: float
    volume: float
    ticks: int
    first_time: datetime  # the time of the tick that set ``open``
    last_time: datetime  # the time of the tick that set ``close``

    @property
    def end(self) -> datetime:
        """The first instant after the bar (OverflowError for the last minute of 9999)."""
        return self.start + timedelta(seconds=TIMEFRAMES[self.timeframe])

    def to_json(self) -> str:
        """Compact JSON; floats as their repr, so :meth:`from_json` gives the bar back exactly.

        >>> Bar("X", "1s", _EPOCH, 1.5, 2.0, 1.5, 2.0, 3.0, 2, _EPOCH, _EPOCH).to_json()[:61]
        '{"symbol":"X","timeframe":"1s","start":"1970-01-01T00:00:00Z"'
        """
        return json.dumps(
            {
                "symbol": self.symbol,
                "timeframe": self.timeframe,
                "start": _iso(self.start),
                "open": self.open,
                "high": self.high,
                "low": self.low,
                "close": self.close,
                "volume": self.volume,
                "ticks": self.ticks,
                "first_time": _iso(self.first_time),
                "last_time": _iso(self.last_time),
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Bar:
        """The bar :meth:`to_json` wrote; ValueError naming the field if it is not one."""
        document = json.loads(text)
        if type(document) is not dict or set(document) != set(_BAR_FIELDS):
            raise ValueError(f"{text!r} is not a stored bar: its keys must be {_BAR_FIELDS}")
        bar = cls(
            symbol=_stored(document, "symbol", str),
            timeframe=_stored(document, "timeframe", str),
            start=_stored_time(document, "start"),
            open=_stored(document, "open", float),
            high=_stored(document, "high", float),
            low=_stored(document, "low", float),
            close=_stored(document, "close", float),
            volume=_stored(document, "volume", float),
            ticks=_stored(document, "ticks", int),
            first_time=_stored_time(document, "first_time"),
            last_time=_stored_time(document, "last_time"),
        )
        length = TIMEFRAMES.get(bar.timeframe)
        if length is None or _epoch_second(bar.start) % length or bar.start.microsecond:
            raise ValueError(
                f"stored bar: start={document['start']!r} does not start a "
                f"{bar.timeframe!r} bar (timeframes: {', '.join(TIMEFRAMES)})"
            )
        return bar


def _stored(document: dict[str, Any], name: str, kind: type[_T]) -> _T:
    value = document[name]
    if type(value) is not kind:
        raise ValueError(f"stored bar: {name}={value!r} is not a {kind.__name__}")
    return value


def _stored_time(document: dict[str, Any], name: str) -> datetime:
    value = document[name]
    try:
        moment = datetime.fromisoformat(value)
        if moment.utcoffset() is not None:
            return moment.astimezone(UTC)
    except (TypeError, ValueError, OverflowError):
        pass
    raise ValueError(f"stored bar: {name}={value!r} is not an ISO 8601 time with an offset")


def _epoch_second(moment: datetime) -> int:
    """The floor of ``moment``'s epoch seconds, exactly (``timestamp()`` rounds past 2242)."""
    elapsed = moment - _EPOCH
    return elapsed.days * 86400 + elapsed.seconds


class BarBuilder:
    """The open bar of each timeframe for one symbol; see the module docstring for the rules.

    >>> builder, at = BarBuilder("X"), datetime(2026, 3, 2, 9, 0, 0, 500000, UTC)
    >>> builder.add(Tick("X", 101.25, 101.3, 101.25, 300.0, at))
    []
    >>> builder.add(Tick("X", 101.25, 101.3, 101.3, 5.0, at + timedelta(seconds=1)))[0].close
    101.25
    """

    __slots__ = ("symbol", "_bars", "_ends")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self._bars: list[Bar] = []  # one per timeframe, finest first; empty before a tick
        self._ends: list[int] = []  # each open bar's end, in epoch seconds

    @classmethod
    def restore(cls, symbol: str, open_bars: Iterable[Bar]) -> BarBuilder:
        """A builder holding copies of ``open_bars`` (what :meth:`open_bars` returned: one
        per timeframe, or none); it then goes on exactly as the one they came from."""
        builder = cls(symbol)
        held = list(open_bars)
        by_frame = {bar.timeframe: bar for bar in held}
        if not held:
            return builder
        if set(by_frame) != set(TIMEFRAMES) or len(by_frame) != len(held):
            given = ", ".join(bar.timeframe for bar in held)
            raise ValueError(
                f"{symbol}: open bars of {given} given; need one of each of {', '.join(TIMEFRAMES)}"
            )
        newest = by_frame[_FRAMES[0][0]].last_time
        for name, length in _FRAMES:
            bar = by_frame[name]
            start = _epoch_second(bar.start)
            if bar.symbol != symbol or start % length or bar.last_time != newest:
                raise ValueError(f"{bar!r} is not an open {name} bar of {symbol}")
            builder._bars.append(replace(bar))
            builder._ends.append(start + length)
        return builder

    def open_bars(self) -> list[Bar]:
        """Copies of the open bars, finest first (none before the first tick)."""
        return [replace(bar) for bar in self._bars]

    def add(self, tick: Tick) -> list[Bar]:
        """Put ``tick`` in its bars; return the bars it closes, finest first.

        Raises LateTick, changing nothing, when the tick's 1 s bar is already closed.
        """
        if tick.symbol != self.symbol:
            raise ValueError(f"a tick of {tick.symbol} given to the bars of {self.symbol}")
        moment = tick.time
        elapsed = moment - _EPOCH
        second = elapsed.days * 86400 + elapsed.seconds
        bars, ends = self._bars, self._ends
        if not bars:
            for name, length in _FRAMES:
                bars.append(_new_bar(tick, name, length, second))
                ends.append(second - second % length + length)
            return []
        finest = ends[0] - _FRAMES[0][1]
        if second < finest:
            closed = _EPOCH + timedelta(seconds=second)
            raise LateTick(tick, _FRAMES[0][0], closed)
        closing: list[Bar] = []
        price = tick.last
        for index, (name, length) in enumerate(_FRAMES):
            if second >= ends[index]:
                closing.append(bars[index])
                bars[index] = _new_bar(tick, name, length, second)
                ends[index] = second - second % length + length
                continue
            bar = bars[index]
            if moment < bar.first_time:
                bar.open = price
                bar.first_time = moment
            if moment >= bar.last_time:
                bar.close = price
                bar.last_time = moment
            if price > bar.high:
                bar.high = price
            elif price < bar.low:
                bar.low = price
            bar.volume += tick.size
            bar.ticks += 1
        return closing


def _new_bar(tick: Tick, timeframe: str, length: int, second: int) -> Bar:
    start = _EPOCH + timedelta(seconds=second - second % length)
    price, moment = tick.last, tick.time
    return Bar(tick.symbol, timeframe, start, price, price, price, price, tick.size + 0.0, 1,
               moment, moment)  # fmt: skip


class BarBook:
    """The bars of every symbol: one :class:`BarBuilder` each, made at its first tick."""

    __slots__ = ("_builders",)

    def __init__(self) -> None:
        self._builders: dict[str, BarBuilder] = {}

    @classmethod
    def restore(cls, bars: Iterable[Bar]) -> BarBook:
        """A book holding ``bars`` (what :meth:`open_bars` returned) as its open bars."""
        by_symbol: dict[str, list[Bar]] = {}
        for bar in bars:
            by_symbol.setdefault(bar.symbol, []).append(bar)
        book = cls()
        for symbol, held in by_symbol.items():
            book._builders[symbol] = BarBuilder.restore(symbol, held)
        return book

    def add(self, tick: Tick) -> list[Bar]:
        """:meth:`BarBuilder.add` for the tick's symbol: the bars it closes, finest first."""
        builder = self._builders.get(tick.symbol)
        if builder is None:
            builder = self._builders[tick.symbol] = BarBuilder(tick.symbol)
        return builder.add(tick)

    def open_bars(self, symbols: Iterable[str] | None = None) -> list[Bar]:
        """Copies of every open bar (of ``symbols`` only, when given), by symbol, finest
        first within a symbol."""
        chosen = self._builders if symbols is None else set(symbols) & self._builders.keys()
        return [bar for symbol in sorted(chosen)
                for bar in self._builders[symbol].open_bars()]  # fmt: skip
