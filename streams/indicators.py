"""Technical indicators on closed bars: TA-Lib's streaming handles, one hashed snapshot per bar.

Pure logic (no Faust, no Kafka, no database): an agent feeds closed bars in and publishes the
snapshots that come out; a trade decision records a snapshot's :attr:`Snapshot.hash` as its
lineage hash (``AuditTrail.make_trade_decision(lineage_hash=...)``).

What is computed, and why this way:

* **The catalogue** is every function of TA-Lib's Overlap Studies, Momentum, Volatility and
  Volume Indicators, Price Transform and Statistic Functions groups (107 with TA-Lib 0.8.2),
  except ``MAVP``, which needs a per-bar ``periods`` input that no bar carries. Each
  :class:`IndicatorSpec` names the TA-Lib function, its bar inputs in TA-Lib's argument order,
  its parameters, its outputs and its lookback (bars before the first value). Parameters are
  pinned in ``streams/indicators.toml`` (TA-Lib's own defaults changed in 0.8.0), with
  per-symbol overrides; a bad value is an :class:`IndicatorConfigError` naming the indicator,
  the parameter and the value.
* **TA-Lib computes, we do not.** A :class:`Series` opens ``talib.stream.NAME`` for an
  indicator on the bar where the series holds ``lookback + 1`` bars (its values are None
  before), from the series' bars; from then on each closed bar is one ``handle.update(...)``:
  O(1) work per indicator and bar, and the same float operations as ``talib.NAME`` over the
  same bars, so the streamed values equal the batch function's bit for bit
  (:func:`batch_values`; the tests compare with ``==``). Once every handle is open the series
  drops its bars. Outputs: a multi-output function gives one value per output (``"MACD.macd"``,
  ``"MACD.macdsignal"``, ``"MACD.macdhist"``; a single output is just ``"RSI"``); integer
  outputs (``SUPERTREND.trend``, ``FRACTAL.*``) stay ``int``; NaN and infinities become None.
* **A series is one symbol and timeframe over one UTC day.** It starts at its first bar and
  starts again, with fresh handles, at the first bar whose start falls on a later UTC date.
  This is what makes a restart exact *and* bounded: handles cannot be pickled (they point into
  the C library), so after a restart or a partition rebalance :meth:`Series.rebuild` re-opens
  them from the current day's bars, and the result equals the uninterrupted stream for every
  indicator, those with memory included (the EMA family, RSI, ADX, SAR, and the cumulative
  OBV, AD and VWAP, which never forget where they started). A day of one-second bars is
  86,400 bars at most.
* **Snapshots are canonical and hashed.** :meth:`Snapshot.canonical` is sorted-key, compact,
  ASCII JSON with Python's shortest round-trip floats; :attr:`Snapshot.hash` is its SHA-256.
  :meth:`Snapshot.from_canonical` parses it back (and refuses bytes that are not canonical), so
  an auditor can re-verify a stored snapshot and recompute its values with
  :func:`batch_values` over that day's bars.

TA-Lib's process-wide settings (unstable periods, compatibility, candle settings) must stay at
their defaults in every process that streams or checks values: they change results, and TA-Lib
refuses to change them while any handle is open.

Cost, measured on the development container (CPython 3.11, 2 cores shared with other jobs, so
best of many runs; TA-Lib 0.8.2, the 107 default indicators, random-walk one-second bars)::

    Series.update     ~45 us per bar once every handle is open (the bare TA-Lib updates are
                      ~23 us of it; the rest validates the bar and builds the 136 values)
    Snapshot.hash     ~110 us (float formatting dominates: hash when a decision needs it)
    Series.rebuild    5-8 ms for 3,600 bars, 125-185 ms for 86,400 (opening the handles on
                      the day's arrays is 85-115 ms of it; open_and_fill was no faster)

>>> series = Series(load_catalogue(symbol="AAPL"), "AAPL", "1s")  # doctest: +SKIP
>>> snapshot = series.update(bar)  # doctest: +SKIP
>>> snapshot.values["RSI"], snapshot.hash  # doctest: +SKIP
(55.1, '9c1d...')
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import tomllib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from importlib import resources
from operator import attrgetter, itemgetter
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Protocol

import numpy as np
import orjson
import talib
from talib import abstract, stream

from domain.errors import InvalidField

__all__ = [
    "BAR_FIELDS",
    "EXCLUDED",
    "GROUPS",
    "OHLCV",
    "SUPPORTED",
    "BarError",
    "BarLike",
    "IndicatorConfig",
    "IndicatorConfigError",
    "IndicatorSpec",
    "Series",
    "Snapshot",
    "SnapshotFormatError",
    "batch_values",
    "load_catalogue",
    "make_spec",
]

BAR_FIELDS: Final = ("open", "high", "low", "close", "volume")
# TA-Lib group -> the short group name of a spec
GROUPS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "Overlap Studies": "overlap",
        "Momentum Indicators": "momentum",
        "Volatility Indicators": "volatility",
        "Volume Indicators": "volume",
        "Price Transform": "price",
        "Statistic Functions": "statistic",
    }
)
EXCLUDED: Final[Mapping[str, str]] = MappingProxyType(
    {"MAVP": "needs a per-bar periods input, which no bar carries"}
)


def _function(name: str, **params: int | float) -> Any:
    """``talib.abstract.Function(name, **params)`` (its stub does not declare it)."""
    return getattr(abstract, "Function")(name, **params)  # noqa: B009


def _supported() -> dict[str, str]:
    groups: dict[str, list[str]] = getattr(talib, "get_function_groups")()  # noqa: B009
    return {
        name: short
        for group, short in GROUPS.items()
        for name in groups[group]
        if name not in EXCLUDED
    }


# Indicator name -> short group, in TA-Lib's group order
SUPPORTED: Final[Mapping[str, str]] = MappingProxyType(_supported())
# A handle that needs more bars than it was given to open (the stub does not export it)
_INSUFFICIENT_HISTORY: Final[type[Exception]] = getattr(talib, "InsufficientHistory")  # noqa: B009


# --- errors ------------------------------------------------------------------------------

_UNSET: Final = object()


class IndicatorConfigError(ValueError):
    """The indicator configuration is invalid; the message names indicator, parameter, value.

    >>> str(IndicatorConfigError("is below TA-Lib's minimum, 2", indicator="RSI",
    ...                          parameter="timeperiod", value=1))
    "indicator 'RSI': timeperiod=1 is below TA-Lib's minimum, 2"
    """

    def __init__(
        self,
        reason: str,
        *,
        indicator: str | None = None,
        symbol: str | None = None,
        parameter: str | None = None,
        value: object = _UNSET,
    ) -> None:
        self.reason = reason
        self.indicator = indicator
        self.symbol = symbol
        self.parameter = parameter
        self.value = None if value is _UNSET else value
        where = f"indicator {indicator!r}" if indicator is not None else ""
        if symbol is not None:
            where = f"{where} for symbol {symbol!r}" if where else f"symbol {symbol!r}"
        what = parameter or ""
        if parameter is not None and value is not _UNSET:
            what = f"{parameter}={value!r}"
        if what:
            message = f"{where}: {what} {reason}" if where else f"{what} {reason}"
        else:
            message = f"{where} {reason}" if where else reason
        super().__init__(message)


class BarError(InvalidField):
    """A bar cannot be streamed (not finite, no time zone, out of order); names field, value.

    >>> str(BarError("close", math.nan, "is not finite"))
    'close=nan is not finite'
    """


class SnapshotFormatError(InvalidField):
    """Bytes are not a canonical snapshot; the message names the JSON field and its value."""


# --- the catalogue -----------------------------------------------------------------------


@dataclass(frozen=True)
class IndicatorSpec:
    """One indicator: a TA-Lib function with pinned parameters. Build it with :func:`make_spec`.

    ``inputs`` are bar fields in TA-Lib's argument order; ``lookback`` is the number of bars
    before the first value (so a handle opens on the ``lookback + 1``-th bar).
    """

    name: str
    group: str
    inputs: tuple[str, ...]
    params: Mapping[str, int | float]
    outputs: tuple[str, ...]
    lookback: int

    @property
    def value_names(self) -> tuple[str, ...]:
        """``("RSI",)`` for one output, ``("MACD.macd", "MACD.macdsignal", ...)`` for several."""
        if len(self.outputs) == 1:
            return (self.name,)
        return tuple(f"{self.name}.{output}" for output in self.outputs)


def _inputs(name: str, info: Any) -> tuple[str, ...]:
    fields: list[str] = []
    for value in info.input_names.values():  # price/prices/price0/price1 -> TA-Lib's columns
        fields.extend([value] if isinstance(value, str) else value)
    unknown = [f for f in fields if f not in BAR_FIELDS]
    if unknown:
        raise IndicatorConfigError(f"reads {unknown[0]!r}, which is no bar field", indicator=name)
    return tuple(fields)


def _minimum(name: str, parameter: str, value: int, default: int) -> int | None:
    """The smallest value above ``value`` (up to the default) TA-Lib accepts, if any."""
    for candidate in range(value + 1, default + 1):
        if _function(name, **{parameter: candidate}).lookback >= 0:
            return candidate
    return None


def _refusal(name: str, params: Mapping[str, int | float], symbol: str | None) -> Exception:
    """The error for parameters TA-Lib refuses (lookback -1), blaming one when it can."""
    defaults: dict[str, int | float] = dict(_function(name).parameters)
    for key, value in params.items():
        if _function(name, **{key: value}).lookback >= 0:
            continue
        default = defaults[key]
        if isinstance(value, int) and isinstance(default, int) and value < default:
            least = _minimum(name, key, value, default)
            if least is not None:
                return IndicatorConfigError(
                    f"is below TA-Lib's minimum, {least}",
                    indicator=name,
                    symbol=symbol,
                    parameter=key,
                    value=value,
                )
        return IndicatorConfigError(
            "is refused by TA-Lib (outside the range it accepts)",
            indicator=name,
            symbol=symbol,
            parameter=key,
            value=value,
        )
    return IndicatorConfigError(
        f"has parameters TA-Lib refuses together: {dict(params)}", indicator=name, symbol=symbol
    )


def make_spec(
    name: str, params: Mapping[str, object], *, symbol: str | None = None
) -> IndicatorSpec:
    """The spec of TA-Lib function ``name`` with every parameter pinned, or IndicatorConfigError.

    Integer parameters must be ints; real ones ints or floats (kept as float). ``symbol`` only
    goes into error messages.

    >>> make_spec("RSI", {"timeperiod": 14}).lookback
    14
    """
    if name not in SUPPORTED:
        reason = EXCLUDED.get(name)
        if reason is None:
            groups = ", ".join(GROUPS.values())
            reason = f"is not a TA-Lib function of the groups {groups} (names are upper case)"
        raise IndicatorConfigError(reason, indicator=name, symbol=symbol)
    info = _function(name)
    defaults: dict[str, int | float] = dict(info.parameters)
    pinned: dict[str, int | float] = {}
    for key, value in params.items():
        if key not in defaults:
            known = ", ".join(defaults) or "none"
            raise IndicatorConfigError(
                f"is not a parameter of {name} (its parameters: {known})",
                indicator=name,
                symbol=symbol,
                parameter=key,
                value=value,
            )
        if isinstance(defaults[key], int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise IndicatorConfigError(
                    "must be an integer", indicator=name, symbol=symbol, parameter=key, value=value
                )
            pinned[key] = value
        else:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise IndicatorConfigError(
                    "must be a number", indicator=name, symbol=symbol, parameter=key, value=value
                )
            if not math.isfinite(value):
                raise IndicatorConfigError(
                    "must be finite", indicator=name, symbol=symbol, parameter=key, value=value
                )
            pinned[key] = float(value)
    for key in defaults:
        if key not in pinned:
            raise IndicatorConfigError(
                "is not pinned; give every parameter (TA-Lib's defaults changed in 0.8.0)",
                indicator=name,
                symbol=symbol,
                parameter=key,
            )
    ordered = {key: pinned[key] for key in defaults}  # TA-Lib's parameter order
    lookback = _function(name, **ordered).lookback
    if lookback < 0:
        raise _refusal(name, ordered, symbol)
    return IndicatorSpec(
        name=name,
        group=SUPPORTED[name],
        inputs=_inputs(name, info),
        params=MappingProxyType(ordered),
        outputs=tuple(info.output_names),
        lookback=int(lookback),
    )


def _table(value: object, what: str, **where: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise IndicatorConfigError(f"must be a table ({what})", **where)
    return value


class IndicatorConfig:
    """The catalogue: the ``[defaults]`` indicators, and per-symbol parameter overrides.

    Every table is checked when the config is built; :meth:`specs_for` only looks up.

    >>> IndicatorConfig.load().specs_for("AAPL")[0].name  # doctest: +SKIP
    'ACCBANDS'
    """

    def __init__(
        self,
        defaults: Sequence[IndicatorSpec],
        overrides: Mapping[str, Mapping[str, Mapping[str, object]]] | None = None,
    ) -> None:
        self.defaults = tuple(defaults)
        names = [spec.name for spec in self.defaults]
        if not names:
            raise IndicatorConfigError("defines no indicator: give [defaults.NAME] tables")
        by_name = {spec.name: spec for spec in self.defaults}
        if len(by_name) != len(names):
            twice = next(n for n in names if names.count(n) > 1)
            raise IndicatorConfigError("is defined twice", indicator=twice)
        self._by_symbol: dict[str, tuple[IndicatorSpec, ...]] = {}
        for symbol, tables in (overrides or {}).items():
            if not isinstance(symbol, str) or not symbol.strip():
                raise IndicatorConfigError("must be a non-empty name", symbol=symbol)
            tables = _table(tables, 'symbols."SYMBOL".NAME', symbol=symbol)
            specs = dict(by_name)
            for name, table in tables.items():
                if name not in by_name:
                    raise IndicatorConfigError(
                        "is not in [defaults]; add it there before overriding it",
                        indicator=name,
                        symbol=symbol,
                    )
                table = _table(table, "parameter = value", indicator=name, symbol=symbol)
                merged = {**by_name[name].params, **table}  # an unknown key is named by make_spec
                specs[name] = make_spec(name, merged, symbol=symbol)
            self._by_symbol[symbol] = tuple(specs.values())

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols with overrides."""
        return tuple(self._by_symbol)

    def specs_for(self, symbol: str | None = None) -> tuple[IndicatorSpec, ...]:
        """The catalogue for ``symbol``: the defaults with its overrides applied."""
        if symbol is None:
            return self.defaults
        return self._by_symbol.get(symbol, self.defaults)

    @classmethod
    def parse(cls, document: Mapping[str, Any]) -> IndicatorConfig:
        """The config of a decoded TOML document, or IndicatorConfigError."""
        for key in document:
            if key not in ("defaults", "symbols"):
                raise IndicatorConfigError(
                    "is not a known top-level table (only [defaults] and [symbols])",
                    parameter=key,
                    value=document[key],
                )
        defaults = _table(document.get("defaults", {}), "defaults.NAME")
        specs = [
            make_spec(name, _table(table, "parameter = value", indicator=name))
            for name, table in defaults.items()
        ]
        return cls(specs, _table(document.get("symbols", {}), 'symbols."SYMBOL"'))

    @classmethod
    def load(cls, path: str | Path | None = None) -> IndicatorConfig:
        """The config of ``path``, or of the packaged ``streams/indicators.toml`` when None."""
        if path is None:
            text = resources.files("streams").joinpath("indicators.toml").read_text("utf-8")
            where = "streams/indicators.toml"
        else:
            text = Path(path).read_text(encoding="utf-8")
            where = str(path)
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise IndicatorConfigError(f"{where} is not valid TOML: {error}") from None
        return cls.parse(document)


def load_catalogue(
    path: str | Path | None = None, symbol: str | None = None
) -> tuple[IndicatorSpec, ...]:
    """The indicator specs for ``symbol`` (the defaults when None) from ``path`` or the package."""
    return IndicatorConfig.load(path).specs_for(symbol)


# --- bars and snapshots ------------------------------------------------------------------


class BarLike(Protocol):
    """A closed bar: its start (an aware datetime) and its prices and volume."""

    @property
    def start(self) -> datetime: ...
    @property
    def open(self) -> float: ...
    @property
    def high(self) -> float: ...
    @property
    def low(self) -> float: ...
    @property
    def close(self) -> float: ...
    @property
    def volume(self) -> float: ...


@dataclass(frozen=True, slots=True)
class OHLCV:
    """A bar's prices and volume, as a snapshot records them."""

    open: float
    high: float
    low: float
    close: float
    volume: float


Value = float | int | None
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_KEYS = ("bar", "bar_time", "symbol", "timeframe", "values")


def _utc(moment: object, field: str = "start") -> datetime:
    if type(moment) is datetime and moment.tzinfo is UTC:
        return moment
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise BarError(field, moment, "is not an aware datetime; give UTC")
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def _stamp(t: datetime) -> str:
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T"
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond:06d}Z"
    )


def _refuse_constant(token: str) -> object:
    raise ValueError(f"{token} is not a finite number")


@dataclass(frozen=True)
class Snapshot:
    """The indicator values of one symbol's bar; ``hash`` is the lineage hash decisions record.

    ``values`` maps value name -> float, int or None (no value yet), sorted by name; treat it
    as read-only (the hash covers it).

    >>> Snapshot("AAPL", "1m", t, OHLCV(1.0, 2.0, 0.5, 1.5, 10.0), {"RSI": None}).hash
    ... # doctest: +SKIP
    """

    symbol: str
    timeframe: str
    bar_time: datetime
    bar: OHLCV
    values: dict[str, Value]

    def __post_init__(self) -> None:
        if self.bar_time.tzinfo is not UTC:
            object.__setattr__(self, "bar_time", _utc(self.bar_time, "bar_time"))

    def canonical(self) -> bytes:
        """Sorted-key, compact, ASCII JSON; floats in Python's shortest round-trip form.

        ``json.dumps`` defines the bytes (docs/FORMAT.md section 9); orjson writes the same
        bytes (a snapshot of 136 values in about 40 % of the time), given every float below
        1e-4 in magnitude as ``repr``'s text (orjson writes ``1e-05`` as ``0.00001``). A
        snapshot holding anything but ASCII text, 64-bit integers, None and finite floats
        goes through ``json``. A property test holds the two equal."""
        bar = self.bar
        prices: dict[str, Value] = {
            "close": float(bar.close),
            "high": float(bar.high),
            "low": float(bar.low),
            "open": float(bar.open),
            "volume": float(bar.volume),
        }
        fast_values = _orjson_ready(self.values)
        fast_prices = _orjson_ready(prices)
        if (
            fast_values is not None
            and fast_prices is not None
            and self.symbol.isascii()
            and self.timeframe.isascii()
        ):
            try:
                return orjson.dumps(
                    {
                        "bar": fast_prices,
                        "bar_time": _stamp(self.bar_time),
                        "symbol": self.symbol,
                        "timeframe": self.timeframe,
                        "values": fast_values,
                    },
                    option=orjson.OPT_SORT_KEYS,
                )
            except orjson.JSONEncodeError:  # an integer past 64 bits
                pass
        for name, value in self.values.items():
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise SnapshotFormatError(f"values.{name}", value, "is not a number or None")
        document = {
            "bar": prices,
            "bar_time": _stamp(self.bar_time),
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "values": self.values,
        }
        try:
            text = json.dumps(
                document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
            )
        except ValueError:  # allow_nan=False: name the NaN or infinity
            fields: list[tuple[str, Value]] = [
                (f"bar.{k}", float(getattr(bar, k))) for k in BAR_FIELDS
            ]
            fields += [(f"values.{k}", v) for k, v in self.values.items()]
            name, value = next((n, v) for n, v in fields if not _finite(v))
            raise SnapshotFormatError(name, value, "is not finite") from None
        return text.encode("ascii")

    @property
    def hash(self) -> str:
        """Lowercase hex SHA-256 of :meth:`canonical`."""
        return hashlib.sha256(self.canonical()).hexdigest()

    @classmethod
    def from_canonical(cls, data: bytes) -> Snapshot:
        """The snapshot of canonical bytes; SnapshotFormatError if they are not exactly that."""
        try:
            document = json.loads(data.decode("ascii"), parse_constant=_refuse_constant)
        except (UnicodeDecodeError, ValueError) as error:
            raise SnapshotFormatError(
                "snapshot", data[:80], f"is not ASCII JSON: {error}"
            ) from None
        if not isinstance(document, dict) or tuple(sorted(document)) != _KEYS:
            keys = sorted(document) if isinstance(document, dict) else document
            raise SnapshotFormatError("snapshot", keys, f"must be an object with keys {_KEYS}")
        for key in ("symbol", "timeframe", "bar_time"):
            if not isinstance(document[key], str):
                raise SnapshotFormatError(key, document[key], "is not a string")
        stamp = document["bar_time"]
        if not _TIME.fullmatch(stamp):
            raise SnapshotFormatError("bar_time", stamp, "is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
        try:
            bar_time = datetime.fromisoformat(stamp[:-1]).replace(tzinfo=UTC)
        except ValueError:
            raise SnapshotFormatError("bar_time", stamp, "is not a valid time") from None
        bar = document["bar"]
        if not isinstance(bar, dict) or sorted(bar) != sorted(BAR_FIELDS):
            raise SnapshotFormatError("bar", bar, f"must be an object with keys {BAR_FIELDS}")
        for key, number in bar.items():
            if type(number) is not float:
                raise SnapshotFormatError(f"bar.{key}", number, "is not a float")
        values = document["values"]
        if not isinstance(values, dict):
            raise SnapshotFormatError("values", values, "is not an object")
        for key, value in values.items():
            if value is not None and type(value) not in (float, int):
                raise SnapshotFormatError(f"values.{key}", value, "is not a number or null")
        snapshot = cls(
            symbol=document["symbol"],
            timeframe=document["timeframe"],
            bar_time=bar_time,
            bar=OHLCV(**{key: bar[key] for key in BAR_FIELDS}),
            values=values,
        )
        if snapshot.canonical() != data:
            raise SnapshotFormatError(
                "snapshot", data[:80], "is not canonical (sorted keys, no spaces, shortest floats)"
            )
        return snapshot


def _orjson_ready(numbers: Mapping[str, Value]) -> Mapping[str, Any] | None:
    """``numbers`` as orjson must be given them to write ``json.dumps``'s bytes: a float of
    magnitude below 1e-4 (not 0) as ``repr``'s text, where orjson's own differs. None when
    only ``json`` writes them right: a name that is not ASCII text, a NaN or an infinity
    (``json`` refuses it, and the refusal names it), a type other than exactly float, int
    or None (``json`` formats subclasses its own way)."""
    tiny: list[str] = []
    for name, value in numbers.items():
        if type(name) is not str or not name.isascii():
            return None
        if type(value) is float:
            if not -_MAX_FLOAT <= value <= _MAX_FLOAT:  # NaN compares False
                return None
            if value and -1e-4 < value < 1e-4:
                tiny.append(name)
        elif value is not None and type(value) is not int:
            return None
    if not tiny:
        return numbers
    ready: dict[str, Any] = dict(numbers)
    for name in tiny:
        ready[name] = orjson.Fragment(repr(ready[name]))
    return ready


_MAX_FLOAT: Final = sys.float_info.max


def _finite(value: object) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def _bar(bar: BarLike) -> tuple[datetime, tuple[float, float, float, float, float]]:
    """A bar's UTC start and (open, high, low, close, volume) floats, or BarError."""
    start = _utc(bar.start)
    o, h, lo, c, v = (float(bar.open), float(bar.high), float(bar.low), float(bar.close),
                      float(bar.volume))  # fmt: skip
    isfinite = math.isfinite
    if not (isfinite(o) and isfinite(h) and isfinite(lo) and isfinite(c) and isfinite(v)):
        for name, value in zip(BAR_FIELDS, (o, h, lo, c, v), strict=True):
            if not isfinite(value):
                raise BarError(name, value, "is not finite; TA-Lib handles refuse NaN and infinity")
    return start, (o, h, lo, c, v)


def _value(x: Any) -> Value:
    # x - x is 0 for ints and finite floats, NaN for NaN and infinities
    return x if x - x == 0 else None


# --- the series --------------------------------------------------------------------------


class _Handle(Protocol):
    @property
    def value(self) -> Any: ...
    def update(self, *bar: float) -> Any: ...


_Feeds = list[tuple[Callable[..., Any], int]]  # (handle.update, argument tuple index)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How a series opens and feeds one spec's handle."""

    spec: IndicatorSpec
    opener: Callable[..., _Handle]
    columns: tuple[int, ...]  # indexes into BAR_FIELDS
    arguments: int  # index of the series' argument tuple this handle takes
    slots: tuple[int, ...]  # positions of its values in the series' sorted value names


class Series:
    """One symbol's indicators on one timeframe, over one UTC day; see the module docstring.

    ``update`` takes closed bars in order of their start; a bar on a later UTC date than the
    series' first starts the series again. Handles cannot be pickled: after a restart, use
    :meth:`rebuild` with the day's bars.

    >>> series = Series(load_catalogue(), "AAPL", "1m")  # doctest: +SKIP
    >>> series.update(bar).values["MACD.macd"]  # doctest: +SKIP
    """

    def __init__(self, specs: Sequence[IndicatorSpec], symbol: str, timeframe: str) -> None:
        if not isinstance(symbol, str) or not symbol.strip():
            raise ValueError(f"symbol={symbol!r} must be a non-empty string")
        if not isinstance(timeframe, str) or not timeframe.strip():
            raise ValueError(f"timeframe={timeframe!r} must be a non-empty string, e.g. '1s'")
        self.specs = tuple(specs)
        self.symbol = symbol
        self.timeframe = timeframe
        names = [name for spec in self.specs for name in spec.value_names]
        if len(set(names)) != len(names):
            twice = next(n for n in names if names.count(n) > 1)
            raise ValueError(f"value {twice!r} comes from two specs; give each indicator once")
        self.value_names = tuple(sorted(names))
        position = {name: i for i, name in enumerate(self.value_names)}
        signatures: dict[tuple[int, ...], int] = {}
        plans = []
        for spec in self.specs:
            columns = tuple(BAR_FIELDS.index(field) for field in spec.inputs)
            plans.append(
                _Plan(
                    spec=spec,
                    opener=getattr(stream, spec.name),
                    columns=columns,
                    arguments=signatures.setdefault(columns, len(signatures)),
                    slots=tuple(position[name] for name in spec.value_names),
                )
            )
        self._plans = tuple(sorted(plans, key=lambda plan: plan.spec.lookback))
        # one getter per distinct input signature: each returns that handle's argument tuple
        self._arguments = tuple(
            itemgetter(*columns) if len(columns) > 1 else _single(columns[0])
            for columns in signatures
        )
        self._last: datetime | None = None
        self._restart(None)

    def _restart(self, day: date | None) -> None:
        self._day = day
        self._count = 0
        self._history: list[list[float]] = [[] for _ in BAR_FIELDS]
        self._pending = list(self._plans)
        self._singles: list[tuple[Callable[..., Any], int, int]] = []
        self._multis: list[tuple[Callable[..., Any], int, tuple[int, ...]]] = []
        # once every handle is open: (singles, multis, handle order -> sorted value order)
        self._steady: tuple[_Feeds, _Feeds, Callable[[list[Any]], Sequence[Any]]] | None = None

    @property
    def day(self) -> date | None:
        """The UTC date of the series' bars (None before the first bar)."""
        return self._day

    @property
    def bar_count(self) -> int:
        """The bars the series has seen since it (re)started."""
        return self._count

    @property
    def last_start(self) -> datetime | None:
        """The start of the last bar (None before the first bar)."""
        return self._last

    def update(self, bar: BarLike) -> Snapshot:
        """The snapshot of one closed bar: O(1) TA-Lib work per indicator once it is open."""
        start, fields = _bar(bar)
        last = self._last
        if last is not None and start <= last:
            raise BarError(
                "start", start, f"is not after the previous bar's start, {last.isoformat()}"
            )
        self._last = start
        if start.date() != self._day:  # later, as bars arrive in order: a new UTC day
            self._restart(start.date())
        arguments = [get(fields) for get in self._arguments]
        self._count += 1
        values: Sequence[Any]
        if self._steady is not None:  # every handle is open: values in handle order, then sorted
            singles, multis, to_sorted = self._steady
            values = [update(*arguments[argument]) for update, argument in singles]
            for update, argument in multis:
                values.extend(update(*arguments[argument]))
            if not math.isfinite(sum(values)):  # one C loop: NaN or an infinity makes it so
                values = [x if x - x == 0 else None for x in values]  # those -> None
            values = to_sorted(values)
        else:
            slots: list[Any] = [None] * len(self.value_names)
            for update, argument, slot in self._singles:
                slots[slot] = update(*arguments[argument])
            for update, argument, positions in self._multis:
                for slot, x in zip(positions, update(*arguments[argument]), strict=True):
                    slots[slot] = x
            slots = [x if x is None or x - x == 0 else None for x in slots]
            for column, x in zip(self._history, fields, strict=True):
                column.append(x)
            self._open(slots)
            values = slots
        return Snapshot(
            self.symbol,
            self.timeframe,
            start,
            OHLCV(*fields),
            dict(zip(self.value_names, values, strict=False)),  # as long, by construction
        )

    def _open(self, slots: list[Value], arrays: Sequence[np.ndarray] | None = None) -> None:
        """Open the pending handles the history is long enough for; write their values."""
        held = len(self._history[0]) if arrays is None else len(arrays[0])
        waiting = []
        for index, plan in enumerate(self._pending):  # in order of lookback
            if plan.spec.lookback + 1 > held:
                waiting.extend(self._pending[index:])
                break
            if arrays is None:
                arrays = [np.array(column, dtype=np.float64) for column in self._history]
            try:
                handle = plan.opener(*(arrays[i] for i in plan.columns), **plan.spec.params)
            except _INSUFFICIENT_HISTORY:  # some seedings need more: try again next bar
                waiting.append(plan)
                continue
            value = handle.value
            if len(plan.slots) == 1:
                slots[plan.slots[0]] = _value(value)
                self._singles.append((handle.update, plan.arguments, plan.slots[0]))
            else:
                for slot, x in zip(plan.slots, value, strict=True):
                    slots[slot] = _value(x)
                self._multis.append((handle.update, plan.arguments, plan.slots))
        self._pending = waiting
        if not waiting:
            self._history = [[] for _ in BAR_FIELDS]  # every handle is open: bars not needed
            order = [slot for _, _, slot in self._singles]
            order += [slot for _, _, slots in self._multis for slot in slots]
            to_sorted = [0] * len(order)  # sorted position -> position in handle order
            for position, slot in enumerate(order):
                to_sorted[slot] = position
            self._steady = (
                [(update, argument) for update, argument, _ in self._singles],
                [(update, argument) for update, argument, _ in self._multis],
                _picker(to_sorted),
            )

    @classmethod
    def rebuild(
        cls, specs: Sequence[IndicatorSpec], symbol: str, timeframe: str, bars: Iterable[BarLike]
    ) -> tuple[Series, Snapshot | None]:
        """A series positioned after the last of ``bars``, and that bar's snapshot.

        Give the bars of the current UTC day, in order (bars of earlier days are skipped, as
        ``update`` would restart on the last day's first bar). Each handle is opened once on
        the day's bars, which equals streaming them one by one, bit for bit.

        >>> series, last = Series.rebuild(specs, "AAPL", "1s", todays_bars)  # doctest: +SKIP
        """
        series = cls(specs, symbol, timeframe)
        bars = list(bars)
        starts = [_utc(bar.start) for bar in bars]
        for previous, start in zip(starts, starts[1:], strict=False):
            if start <= previous:
                raise BarError(
                    "start", start, f"is not after the previous bar's start, {previous.isoformat()}"
                )
        if not starts:
            return series, None
        last = starts[-1]
        day = last.date()
        first = bisect_left(starts, datetime.combine(day, time(), UTC))  # the day's first bar
        arrays = _columns(bars[first:])
        series._last = last
        series._restart(day)
        series._count = len(bars) - first
        slots: list[Value] = [None] * len(series.value_names)
        series._open(slots, arrays)
        if series._pending:  # too few bars for some handles: keep them to open those later
            series._history = [array.tolist() for array in arrays]
        bar = OHLCV(*(float(array[-1]) for array in arrays))
        snapshot = Snapshot(
            symbol, timeframe, last, bar, dict(zip(series.value_names, slots, strict=True))
        )
        return series, snapshot


def _columns(bars: Sequence[BarLike]) -> list[np.ndarray]:
    """The bars' open, high, low, close and volume as float64 arrays; BarError if not finite."""
    arrays = []
    for name in BAR_FIELDS:
        array = np.fromiter(map(attrgetter(name), bars), dtype=np.float64, count=len(bars))
        finite = np.isfinite(array)
        if not finite.all():
            index = int(np.flatnonzero(~finite)[0])
            raise BarError(
                name,
                float(array[index]),
                f"is not finite (bar {index}, start {bars[index].start}); TA-Lib handles "
                "refuse NaN and infinity",
            )
        arrays.append(array)
    return arrays


def _picker(indexes: list[int]) -> Callable[[list[Any]], Sequence[Any]]:
    """``lambda xs: tuple(xs[i] for i in indexes)``, in C when there are several."""
    if len(indexes) > 1:
        return itemgetter(*indexes)
    return lambda xs: tuple(xs[i] for i in indexes)


def _single(column: int) -> Callable[[Sequence[float]], tuple[float]]:
    def get(fields: Sequence[float]) -> tuple[float]:
        return (fields[column],)

    return get


def batch_values(specs: Sequence[IndicatorSpec], bars: Sequence[BarLike]) -> dict[str, list[Value]]:
    """TA-Lib's batch functions over ``bars`` (one series: one symbol's bars of one day).

    Value name -> one value per bar, sorted by name: what a :class:`Series` streams over the
    same bars, for tests and audits. None where TA-Lib gives NaN or an infinity, and before the
    lookback, where TA-Lib fills integer outputs with 0.
    """
    arrays = _columns(bars)
    result: dict[str, list[Value]] = {}
    for spec in specs:
        if not bars:
            result.update((name, []) for name in spec.value_names)
            continue
        function = getattr(talib, spec.name)
        out = function(*(arrays[BAR_FIELDS.index(f)] for f in spec.inputs), **spec.params)
        outputs = out if isinstance(out, tuple) else (out,)
        for name, output in zip(spec.value_names, outputs, strict=True):
            # before the lookback TA-Lib fills NaN, or 0 for integer outputs: no value yet
            start = min(spec.lookback, len(bars))
            values: list[Value] = [None] * start
            values.extend(_value(x) for x in output[start:].tolist())
            result[name] = values
    return dict(sorted(result.items()))
