"""Indicators: every streamed value equals TA-Lib's batch function on the same bars, bit for bit.

The reference is ``talib.NAME`` over the series' bars (one UTC day), through
:func:`batch_values`, cross-checked against ``talib.abstract`` (which maps the bar columns by
name, so a wrong input order would show). Equality is ``==`` plus ``repr``, which also tells
-0.0 from 0.0 and 1 from 1.0.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import tomllib
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from talib import abstract

from streams import indicators
from streams.indicators import (
    BAR_FIELDS,
    OHLCV,
    BarError,
    IndicatorConfig,
    IndicatorConfigError,
    IndicatorSpec,
    Series,
    Snapshot,
    SnapshotFormatError,
    batch_values,
    load_catalogue,
)

CATALOGUE = load_catalogue()
BY_NAME = {spec.name: spec for spec in CATALOGUE}
SHIPPED = Path(__file__).parents[2] / "streams" / "indicators.toml"
DAY = datetime(2024, 3, 1, tzinfo=UTC)
talib_function = abstract.Function  # type: ignore[attr-defined]  # its stub leaves it out


@dataclass(frozen=True)
class Bar:
    start: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


def random_walk(n: int, *, seed: int = 7, start: datetime = DAY) -> list[Bar]:
    """Seeded random-walk OHLCV one-second bars."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.random(n) * 0.002)
    low = np.minimum(open_, close) * (1 - rng.random(n) * 0.002)
    volume = rng.lognormal(6, 1, n).round()
    return [
        Bar(
            start + timedelta(seconds=i),
            *map(float, (open_[i], high[i], low[i], close[i], volume[i])),
        )
        for i in range(n)
    ]


def flat_zero_volume(n: int) -> list[Bar]:
    """The random walk with every other 40 bars flat (O = H = L = C) and without volume."""
    bars = random_walk(n, seed=11)
    for i in range(n):
        if i // 40 % 2 == 0:
            price = bars[i // 40 * 40].close
            bars[i] = replace(bars[i], open=price, high=price, low=price, close=price, volume=0.0)
    return bars


def exact(values: list[float | int | None]) -> list[str]:
    return [repr(x) for x in values]


@cache
def streamed(inputs: str) -> tuple[list[Bar], list[Snapshot], dict[str, list[float | int | None]]]:
    # One pass of 600 bars through the whole catalogue, shared by the per-indicator tests.
    bars = random_walk(600) if inputs == "random_walk" else flat_zero_volume(600)
    series = Series(CATALOGUE, "AAPL", "1s")
    return bars, [series.update(bar) for bar in bars], batch_values(CATALOGUE, bars)


# --- (a) streamed == batch, for every indicator -------------------------------------------


@pytest.mark.parametrize("inputs", ["random_walk", "flat_zero_volume"])
@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_streamed_values_equal_talib_batch_exactly(name: str, inputs: str) -> None:
    spec = BY_NAME[name]
    bars, snapshots, batch = streamed(inputs)
    columns = {f: np.array([getattr(b, f) for b in bars]) for f in BAR_FIELDS}
    reference = talib_function(name, **spec.params)(columns)
    reference = reference if isinstance(reference, list) else [reference]
    for value_name, talib_output in zip(spec.value_names, reference, strict=True):
        values = [s.values[value_name] for s in snapshots]
        assert values == batch[value_name]
        assert exact(values) == exact(batch[value_name])
        # batch_values is TA-Lib's output as abstract computes it from named columns
        assert exact(batch[value_name][spec.lookback :]) == exact(
            [x if np.isfinite(x) else None for x in talib_output[spec.lookback :].tolist()]
        )
        # no value before the lookback, one on the bar after
        assert values[: spec.lookback] == [None] * spec.lookback
        if inputs == "random_walk":
            assert values[spec.lookback] is not None


def test_zero_volume_gives_none_where_talib_gives_nan() -> None:
    # RVOL and VWMA divide by a window's volume: NaN once a window holds no volume, here also
    # after every handle is open (bar 110; the largest lookback is 100).
    _, snapshots, batch = streamed("flat_zero_volume")
    assert (snapshots[110].values["RVOL"], snapshots[110].values["VWMA"]) == (None, None)
    assert snapshots[110].values["RSI"] is not None
    assert snapshots[60].values["RVOL"] == batch["RVOL"][60] is not None


def test_integer_outputs_stay_integers() -> None:
    _, snapshots, _ = streamed("random_walk")
    last = snapshots[-1].values
    assert type(last["SUPERTREND.trend"]) is int
    assert last["SUPERTREND.trend"] in (-1, 1)
    assert {type(last["FRACTAL.swinghigh"]), type(last["FRACTAL.swinglow"])} == {int}
    assert type(last["SUPERTREND.supertrend"]) is float


# --- (b) restart: rebuild from the bars, continue with identical snapshots ---------------


@pytest.mark.parametrize("split", [1, 14, 100, 101, 102, 350, 599])
def test_rebuild_mid_series_continues_identically(split: int) -> None:
    # 100 is the largest lookback (PERCENTRANK): a split before it leaves handles to open later.
    assert max(spec.lookback for spec in CATALOGUE) == 100
    bars = random_walk(600)
    original = Series(CATALOGUE, "AAPL", "1s")
    before = [original.update(bar) for bar in bars[:split]]

    # The process restarts: handles are gone, the day's bars are in the store.
    rebuilt, last = Series.rebuild(CATALOGUE, "AAPL", "1s", bars[:split])

    assert last == before[-1]
    assert last is not None and last.hash == before[-1].hash
    assert (rebuilt.day, rebuilt.bar_count, rebuilt.last_start) == (
        original.day,
        original.bar_count,
        original.last_start,
    )
    for bar in bars[split:]:
        expected, actual = original.update(bar), rebuilt.update(bar)
        assert actual == expected
        assert actual.hash == expected.hash


def test_rebuild_without_bars_is_an_empty_series() -> None:
    series, last = Series.rebuild(CATALOGUE, "AAPL", "1s", [])
    assert last is None
    assert (series.day, series.bar_count) == (None, 0)
    first = random_walk(1)[0]
    assert series.update(first) == Series(CATALOGUE, "AAPL", "1s").update(first)


def test_rebuild_skips_earlier_days_as_the_stream_does() -> None:
    bars = random_walk(300, start=DAY - timedelta(seconds=200))  # 200 bars on the day before
    stream = Series(CATALOGUE, "AAPL", "1m")
    snapshots = [stream.update(bar) for bar in bars]
    rebuilt, last = Series.rebuild(CATALOGUE, "AAPL", "1m", bars)
    assert last == snapshots[-1]
    assert (rebuilt.day, rebuilt.bar_count) == (date(2024, 3, 1), 100)


def test_series_cannot_be_pickled() -> None:
    series = Series(CATALOGUE[:3], "AAPL", "1s")
    for bar in random_walk(40):
        series.update(bar)
    with pytest.raises(TypeError, match="cannot pickle"):
        pickle.dumps(series)


# --- (c) a series is one UTC day ---------------------------------------------------------


def test_a_new_utc_day_starts_a_new_series() -> None:
    bars = random_walk(400, start=datetime(2024, 3, 1, 23, 55, tzinfo=UTC))  # midnight at 300
    assert (bars[299].start.date(), bars[300].start.date()) == (date(2024, 3, 1), date(2024, 3, 2))
    series = Series(CATALOGUE, "AAPL", "1s")
    snapshots = [series.update(bar) for bar in bars]
    day_one, day_two = batch_values(CATALOGUE, bars[:300]), batch_values(CATALOGUE, bars[300:])
    for name in series.value_names:
        assert exact([s.values[name] for s in snapshots[:300]]) == exact(day_one[name])
        assert exact([s.values[name] for s in snapshots[300:]]) == exact(day_two[name])
    assert snapshots[300].values["OBV"] == bars[300].volume  # cumulative from the day's first bar
    assert snapshots[300].values["RSI"] is None
    assert (series.day, series.bar_count) == (date(2024, 3, 2), 100)


def test_bar_times_in_other_zones_count_by_their_utc_date() -> None:
    new_york = timezone(timedelta(hours=-5))
    series = Series(CATALOGUE[:2], "AAPL", "1m")
    bar = random_walk(1)[0]
    first = series.update(replace(bar, start=datetime(2024, 3, 1, 18, 59, tzinfo=new_york)))
    series.update(replace(bar, start=datetime(2024, 3, 1, 19, 0, tzinfo=new_york)))
    assert first.bar_time == datetime(2024, 3, 1, 23, 59, tzinfo=UTC)
    assert first.bar_time.tzinfo is UTC
    assert (series.day, series.bar_count) == (date(2024, 3, 2), 1)


def test_bars_must_arrive_in_order_and_finite() -> None:
    bars = random_walk(3)
    series = Series(CATALOGUE, "AAPL", "1s")
    series.update(bars[1])
    with pytest.raises(BarError) as caught:
        series.update(bars[0])
    assert str(caught.value) == (
        "start=datetime.datetime(2024, 3, 1, 0, 0, tzinfo=datetime.timezone.utc) is not after "
        "the previous bar's start, 2024-03-01T00:00:01+00:00"
    )
    with pytest.raises(BarError, match=r"^close=nan is not finite; TA-Lib handles refuse NaN"):
        series.update(replace(bars[2], close=float("nan")))
    with pytest.raises(BarError, match=r"^start=.* is not an aware datetime; give UTC$"):
        series.update(replace(bars[2], start=datetime(2024, 3, 1, 0, 0, 2)))
    # The refused bars changed nothing: the next good bar streams as if they never came.
    twin = Series(CATALOGUE, "AAPL", "1s")
    twin.update(bars[1])
    assert series.update(bars[2]) == twin.update(bars[2])
    with pytest.raises(BarError, match=r"^volume=inf is not finite \(bar 1, start "):
        Series.rebuild(CATALOGUE, "AAPL", "1s", [bars[0], replace(bars[1], volume=float("inf"))])


# --- (d) the catalogue config ------------------------------------------------------------


def config(text: str) -> IndicatorConfig:
    return IndicatorConfig.parse(tomllib.loads(text))


def test_a_symbol_override_changes_that_symbol_only(tmp_path: Path) -> None:
    path = tmp_path / "indicators.toml"
    path.write_text(
        SHIPPED.read_text(encoding="utf-8")
        + '\n[symbols."AAPL".RSI]\ntimeperiod = 21\n\n[symbols."AAPL".BBANDS]\nnbdevup = 3\n',
        encoding="utf-8",
    )
    aapl = {spec.name: spec for spec in load_catalogue(path, "AAPL")}
    msft = {spec.name: spec for spec in load_catalogue(path, "MSFT")}
    assert (dict(aapl["RSI"].params), aapl["RSI"].lookback) == ({"timeperiod": 21}, 21)
    assert (dict(msft["RSI"].params), msft["RSI"].lookback) == ({"timeperiod": 14}, 14)
    assert dict(aapl["BBANDS"].params) == {
        "timeperiod": 20,
        "nbdevup": 3.0,  # a TOML integer for a real parameter, kept as a float
        "nbdevdn": 2.0,
        "matype": 0,
    }
    assert type(aapl["BBANDS"].params["nbdevup"]) is float
    assert msft == BY_NAME
    assert [spec.name for spec in load_catalogue(path, "AAPL")] == list(BY_NAME)
    assert IndicatorConfig.load(path).symbols == ("AAPL",)
    # The override reaches the values: AAPL's RSI is the 21-bar one.
    bars = random_walk(60)
    series = Series(load_catalogue(path, "AAPL"), "AAPL", "1s")
    values = [series.update(bar).values["RSI"] for bar in bars]
    assert values == batch_values([aapl["RSI"]], bars)["RSI"]
    assert (values[20], values[21] is not None) == (None, True)


RSI = "[defaults.RSI]\ntimeperiod = 14\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[defaults.FOO]\n",
            "indicator 'FOO' is not a TA-Lib function of the groups overlap, momentum, "
            "volatility, volume, price, statistic (names are upper case)",
        ),
        ("[defaults.rsi]\ntimeperiod = 14\n", "indicator 'rsi' is not a TA-Lib function"),
        (
            "[defaults.MAVP]\nminperiod = 2\nmaxperiod = 30\nmatype = 0\n",
            "indicator 'MAVP' needs a per-bar periods input, which no bar carries",
        ),
        (
            "[defaults.CDLDOJI]\n",
            "indicator 'CDLDOJI' is not a TA-Lib function of the groups",
        ),
        (
            RSI + "period = 3\n",
            "indicator 'RSI': period=3 is not a parameter of RSI (its parameters: timeperiod)",
        ),
        (
            '[defaults.RSI]\ntimeperiod = "14"\n',
            "indicator 'RSI': timeperiod='14' must be an integer",
        ),
        (
            "[defaults.RSI]\ntimeperiod = 14.0\n",
            "indicator 'RSI': timeperiod=14.0 must be an integer",
        ),
        (
            "[defaults.RSI]\ntimeperiod = true\n",
            "indicator 'RSI': timeperiod=True must be an integer",
        ),
        (
            "[defaults.STDDEV]\ntimeperiod = 5\nnbdev = 'one'\n",
            "indicator 'STDDEV': nbdev='one' must be a number",
        ),
        (
            "[defaults.STDDEV]\ntimeperiod = 5\nnbdev = nan\n",
            "indicator 'STDDEV': nbdev=nan must be finite",
        ),
        (
            "[defaults.RSI]\ntimeperiod = 1\n",
            "indicator 'RSI': timeperiod=1 is below TA-Lib's minimum, 2",
        ),
        (
            "[defaults.MACD]\nfastperiod = 12\nslowperiod = 0\nsignalperiod = 9\n",
            "indicator 'MACD': slowperiod=0 is below TA-Lib's minimum, 2",
        ),
        (
            "[defaults.BBANDS]\ntimeperiod = 20\nnbdevup = 2.0\nnbdevdn = 2.0\nmatype = 99\n",
            "indicator 'BBANDS': matype=99 is refused by TA-Lib (outside the range it accepts)",
        ),
        (
            "[defaults.SAR]\nacceleration = -0.02\nmaximum = 0.2\n",
            "indicator 'SAR': acceleration=-0.02 is refused by TA-Lib "
            "(outside the range it accepts)",
        ),
        (
            "[defaults.SMA]\ntimeperiod = 100001\n",
            "indicator 'SMA': timeperiod=100001 is refused by TA-Lib "
            "(outside the range it accepts)",
        ),
        (
            "[defaults.RSI]\n",
            "indicator 'RSI': timeperiod is not pinned; give every parameter "
            "(TA-Lib's defaults changed in 0.8.0)",
        ),
        (
            RSI + '[symbols."AAPL".RSI]\ntimeperiod = 1\n',
            "indicator 'RSI' for symbol 'AAPL': timeperiod=1 is below TA-Lib's minimum, 2",
        ),
        (
            RSI + '[symbols."AAPL".RSI]\nperiod = 21\n',
            "indicator 'RSI' for symbol 'AAPL': period=21 is not a parameter of RSI "
            "(its parameters: timeperiod)",
        ),
        (
            RSI + '[symbols."AAPL".EMA]\ntimeperiod = 21\n',
            "indicator 'EMA' for symbol 'AAPL' is not in [defaults]; add it there before "
            "overriding it",
        ),
        (RSI + '[symbols.""]\n', "symbol '' must be a non-empty name"),
        (
            RSI + "[extra]\n",
            "extra={} is not a known top-level table (only [defaults] and [symbols])",
        ),
        ("", "defines no indicator: give [defaults.NAME] tables"),
        ("defaults = 3\n", "must be a table (defaults.NAME)"),
    ],
)
def test_config_errors_name_indicator_parameter_and_value(text: str, message: str) -> None:
    with pytest.raises(IndicatorConfigError) as caught:
        config(text)
    assert str(caught.value).startswith(message)
    if "TA-Lib function" not in message:
        assert str(caught.value) == message


def test_config_error_attributes_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(IndicatorConfigError) as caught:
        config(RSI + '[symbols."AAPL".RSI]\ntimeperiod = 1\n')
    error = caught.value
    assert (error.indicator, error.symbol, error.parameter, error.value) == (
        "RSI",
        "AAPL",
        "timeperiod",
        1,
    )
    path = tmp_path / "broken.toml"
    path.write_text("[defaults.RSI\n", encoding="utf-8")
    with pytest.raises(IndicatorConfigError, match=r"broken.toml is not valid TOML: "):
        IndicatorConfig.load(path)


# --- (e) snapshots: canonical bytes and the lineage hash ---------------------------------

EXAMPLE = Snapshot(
    symbol="AAPL",
    timeframe="1m",
    bar_time=datetime(2024, 3, 1, 14, 30, tzinfo=UTC),
    bar=OHLCV(open=101.25, high=101.5, low=100.75, close=101.0, volume=1200.0),
    values={"MACD.macd": 0.1, "RSI": 55.5, "SMA": None, "SUPERTREND.trend": -1, "WILLR": -0.0},
)
EXAMPLE_CANONICAL = (
    b'{"bar":{"close":101.0,"high":101.5,"low":100.75,"open":101.25,"volume":1200.0},'
    b'"bar_time":"2024-03-01T14:30:00.000000Z","symbol":"AAPL","timeframe":"1m",'
    b'"values":{"MACD.macd":0.1,"RSI":55.5,"SMA":null,"SUPERTREND.trend":-1,"WILLR":-0.0}}'
)
# sha256 of EXAMPLE_CANONICAL, computed once with `sha256sum` and pinned here
EXAMPLE_HASH = "4565672ae8fbf2539cb4a4b80073edd69241900d64636dbe837370a9a856c4dd"


def test_snapshot_canonical_bytes_and_hash() -> None:
    assert EXAMPLE.canonical() == EXAMPLE_CANONICAL
    assert EXAMPLE.hash == hashlib.sha256(EXAMPLE_CANONICAL).hexdigest() == EXAMPLE_HASH
    assert Snapshot.from_canonical(EXAMPLE_CANONICAL) == EXAMPLE


def test_snapshot_time_is_utc_with_microseconds() -> None:
    paris = timezone(timedelta(hours=1))
    moment = datetime(2024, 3, 1, 15, 30, 0, 5, tzinfo=paris)
    snapshot = replace(EXAMPLE, bar_time=moment)
    assert b'"bar_time":"2024-03-01T14:30:00.000005Z"' in snapshot.canonical()
    with pytest.raises(BarError, match=r"^bar_time=.* is not an aware datetime; give UTC$"):
        replace(EXAMPLE, bar_time=datetime(2024, 3, 1))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (EXAMPLE_CANONICAL.replace(b":", b": ", 1), "snapshot=.* is not canonical"),
        (EXAMPLE_CANONICAL.replace(b"55.5", b"55.50"), "snapshot=.* is not canonical"),
        (EXAMPLE_CANONICAL.replace(b"55.5", b"NaN"), "snapshot=.* is not ASCII JSON: NaN"),
        (EXAMPLE_CANONICAL.replace(b"1200.0", b"1200"), r"bar.volume=1200 is not a float"),
        (EXAMPLE_CANONICAL.replace(b"-1", b"true"), r"values.SUPERTREND.trend=True is not a"),
        (EXAMPLE_CANONICAL.replace(b"00.000000Z", b"00Z"), "bar_time='2024-03-01T14:30:00Z' is"),
        (EXAMPLE_CANONICAL.replace(b'"symbol"', b'"ticker"'), "snapshot=.* must be an object"),
        ("{}".encode("utf-16"), "snapshot=.* is not ASCII JSON"),
    ],
)
def test_from_canonical_refuses_anything_else(data: bytes, message: str) -> None:
    with pytest.raises(SnapshotFormatError, match=message):
        Snapshot.from_canonical(data)


def test_canonical_refuses_what_json_cannot_carry_exactly() -> None:
    with pytest.raises(SnapshotFormatError, match=r"^values.RSI=nan is not finite$"):
        replace(EXAMPLE, values={"RSI": float("nan")}).canonical()
    with pytest.raises(SnapshotFormatError, match=r"^bar.high=inf is not finite$"):
        replace(EXAMPLE, bar=replace(EXAMPLE.bar, high=float("inf"))).canonical()
    with pytest.raises(SnapshotFormatError, match=r"^values.RSI=True is not a number or None$"):
        replace(EXAMPLE, values={"RSI": True}).canonical()


finite = st.floats(allow_nan=False, allow_infinity=False)
numbers = st.one_of(
    st.none(),
    finite,
    st.sampled_from([0.0, -0.0, 5e-324, -2.2250738585072014e-308, 1.7976931348623157e308]),
    st.integers(min_value=-(2**63), max_value=2**63),
)


@given(
    symbol=st.text(min_size=1, max_size=12),
    timeframe=st.sampled_from(["1s", "1m", "5m", "1h"]),
    bar_time=st.datetimes(timezones=st.just(UTC)),
    bar=st.builds(OHLCV, finite, finite, finite, finite, finite),
    values=st.dictionaries(st.text(max_size=20), numbers, max_size=12),
)
def test_canonical_round_trip_is_exact(
    symbol: str,
    timeframe: str,
    bar_time: datetime,
    bar: OHLCV,
    values: dict[str, float | int | None],
) -> None:
    snapshot = Snapshot(symbol, timeframe, bar_time, bar, dict(sorted(values.items())))
    data = snapshot.canonical()
    again = Snapshot.from_canonical(data)
    assert again == snapshot
    assert exact(list(again.values.values())) == exact(list(snapshot.values.values()))
    assert list(again.values) == sorted(values)
    assert again.canonical() == data
    assert again.hash == snapshot.hash == hashlib.sha256(data).hexdigest()


def _json_canonical(snapshot: Snapshot) -> bytes:
    """The canonical bytes as docs/FORMAT.md section 9 defines them: json.dumps."""
    b = snapshot.bar
    document = {
        "bar": {"close": b.close, "high": b.high, "low": b.low, "open": b.open, "volume": b.volume},
        "bar_time": snapshot.bar_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "symbol": snapshot.symbol,
        "timeframe": snapshot.timeframe,
        "values": snapshot.values,
    }
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    return text.encode("ascii")


any_floats = st.one_of(
    st.floats(),  # NaN and infinities: refused either way
    st.floats(min_value=-1e-3, max_value=1e-3),  # where orjson writes floats otherwise
    st.sampled_from([1e-4, -1e-4, 9.999999999999999e-05, 1e16, 1e-7, 5e-324]),
)


@given(
    symbol=st.text(min_size=1, max_size=6),
    bar=st.builds(OHLCV, any_floats, any_floats, any_floats, any_floats, any_floats),
    values=st.dictionaries(
        st.text(max_size=6),
        st.one_of(st.none(), any_floats, st.integers(min_value=-(2**70), max_value=2**70)),
        max_size=8,
    ),
)
def test_canonical_bytes_are_json_dumps_bytes(
    symbol: str, bar: OHLCV, values: dict[str, float | int | None]
) -> None:
    snapshot = Snapshot(symbol, "1s", EXAMPLE.bar_time, bar, dict(sorted(values.items())))
    try:
        expected: bytes | type[Exception] = _json_canonical(snapshot)
    except ValueError:
        expected = SnapshotFormatError  # NaN or an infinity: refused, naming the field
    try:
        actual: bytes | type[Exception] = snapshot.canonical()
    except SnapshotFormatError:
        actual = SnapshotFormatError
    assert actual == expected


def test_canonical_takes_orjson_only_where_it_writes_json_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoded: list[object] = []
    real = indicators.orjson.dumps

    def spy(document: object, **options: object) -> bytes:
        encoded.append(document)
        return real(document, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(indicators.orjson, "dumps", spy)
    fast = replace(EXAMPLE, values={"RSI": 55.5, "OBV": 120, "SMA": None, "ROC": 0.0})
    assert fast.canonical() == _json_canonical(fast) and len(encoded) == 1
    tiny = replace(EXAMPLE, values={"MARKETFI": 3.5e-05, "RSI": 55.5})  # orjson: 0.000035
    data = tiny.canonical()
    assert data == _json_canonical(tiny) and len(encoded) == 2
    assert b'"MARKETFI":3.5e-05,' in data
    for slow in (
        replace(EXAMPLE, symbol="SÜD"),  # json escapes it: \u00dc
        replace(EXAMPLE, values={"RSI": np.float64(55.5)}),  # a float subclass
        replace(EXAMPLE, values={"BIG": 2**64}),  # past orjson's 64 bits
    ):
        assert slow.canonical() == _json_canonical(slow)
    assert len(encoded) == 3  # the 64-bit integer was tried, refused, and went to json


# --- (f) what the catalogue holds --------------------------------------------------------

NAMED_IN_THE_ISSUE = (
    *("SMA", "EMA", "WMA", "DEMA", "TEMA", "KAMA", "MACD", "RSI", "STOCH", "STOCHRSI", "ADX"),
    *("CCI", "MFI", "OBV", "ATR", "NATR", "BBANDS", "ROC", "MOM", "WILLR", "AROON", "SAR", "VWAP"),
)


def test_catalogue_covers_the_six_groups_and_every_named_indicator() -> None:
    assert len(CATALOGUE) == 107 >= 67
    assert [name for name in NAMED_IN_THE_ISSUE if name not in BY_NAME] == []
    groups = {spec.group for spec in CATALOGUE}
    assert groups == {"overlap", "momentum", "volatility", "volume", "price", "statistic"}
    assert "MAVP" not in BY_NAME
    assert (
        sum(len(spec.value_names) for spec in CATALOGUE)
        == len(Series(CATALOGUE, "A", "1s").value_names)
        == 136
    )


@pytest.mark.parametrize(
    ("name", "inputs", "params", "outputs", "lookback", "value_names"),
    [
        ("RSI", ("close",), {"timeperiod": 14}, ("real",), 14, ("RSI",)),
        (
            "MACD",
            ("close",),
            {"fastperiod": 12, "slowperiod": 26, "signalperiod": 9},
            ("macd", "macdsignal", "macdhist"),
            33,
            ("MACD.macd", "MACD.macdsignal", "MACD.macdhist"),
        ),
        ("OBV", ("close", "volume"), {}, ("real",), 0, ("OBV",)),
        ("MFI", ("high", "low", "close", "volume"), {"timeperiod": 14}, ("real",), 14, ("MFI",)),
        ("BETA", ("high", "low"), {"timeperiod": 5}, ("real",), 5, ("BETA",)),
        ("VWMA", ("close", "volume"), {"timeperiod": 30}, ("real",), 29, ("VWMA",)),
        ("BOP", ("open", "high", "low", "close"), {}, ("real",), 0, ("BOP",)),
        (
            "AROON",
            ("high", "low"),
            {"timeperiod": 14},
            ("aroondown", "aroonup"),
            14,
            ("AROON.aroondown", "AROON.aroonup"),
        ),
        ("TRIX", ("close",), {"timeperiod": 30}, ("real",), 88, ("TRIX",)),
        ("VWAP", ("high", "low", "close", "volume"), {}, ("real",), 0, ("VWAP",)),
    ],
)
def test_specs_carry_talib_inputs_params_outputs_and_lookback(
    name: str,
    inputs: tuple[str, ...],
    params: dict[str, int | float],
    outputs: tuple[str, ...],
    lookback: int,
    value_names: tuple[str, ...],
) -> None:
    spec = BY_NAME[name]
    assert isinstance(spec, IndicatorSpec)
    assert (spec.inputs, dict(spec.params), spec.outputs, spec.lookback, spec.value_names) == (
        inputs,
        params,
        outputs,
        lookback,
        value_names,
    )


def test_every_parameter_is_pinned_in_the_shipped_file() -> None:
    document = tomllib.loads(SHIPPED.read_text(encoding="utf-8"))
    assert list(document) == ["defaults"]  # the shipped file overrides no symbol
    for spec in CATALOGUE:
        assert document["defaults"][spec.name] == dict(spec.params)
        assert list(document["defaults"][spec.name]) == list(talib_function(spec.name).parameters)
