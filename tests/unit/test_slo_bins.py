"""The SLO sink's pure parts (streams/slo_store.py): latency bins as JSON, window rows,
record decoding and the ``slo.alerts`` message. Exact values; the codec also by property."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from ddsketch import DDSketch
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.slo import (
    RELATIVE_ACCURACY,
    SLO,
    Alert,
    MinuteAggregator,
    MinuteWindow,
    RequestSample,
    SampleError,
    add_all,
)
from streams.slo_store import (
    PERCENTILES,
    add_bins,
    alert_json,
    breach_id,
    decode_bins,
    decode_sample,
    encode_bins,
    minute_key,
    percentile_ms,
    tracking_name,
    window_row,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
M0 = int(T0.timestamp()) // 60
AVAILABILITY = SLO("api-availability", "trading-api", "availability", Decimal("99.95"))
LATENCY = SLO("api-latency", "trading-api", "latency", Decimal(95), Decimal(100))
SLOS = (AVAILABILITY, LATENCY)

# Latencies as telemetry carries them: 0, sub-millisecond, milliseconds, up to an hour.
latencies = st.one_of(
    st.just(0.0),
    st.floats(min_value=1e-6, max_value=3_600_000, allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=10_000).map(float),
)
latency_lists = st.lists(latencies, min_size=1, max_size=300)


def _sketch(values: list[float]) -> DDSketch:
    sketch = DDSketch(RELATIVE_ACCURACY)
    for value in values:
        sketch.add(value)
    return sketch


def _quantiles(sketch: DDSketch) -> list[float | None]:
    return [sketch.get_quantile_value(q) for q in PERCENTILES]


# --- the bins codec ----------------------------------------------------------------------------


def test_bins_are_the_mapping_keys_with_their_counts() -> None:
    # Key = ceil(ln(v) / ln(1.0202...)): 10.0 and 10.05 ms share bin 116, 100 ms is 231.
    sketch = _sketch([0.0, 10.0, 10.05, 100.0, 0.0, 0.0])
    assert encode_bins(sketch) == {"zero": 3, "bins": {"116": 2, "231": 1}}
    assert encode_bins(DDSketch(RELATIVE_ACCURACY)) == {"zero": 0, "bins": {}}
    decoded = decode_bins({"zero": 3, "bins": {"116": 2, "231": 1}})
    assert decoded.count == 6
    assert _quantiles(decoded) == _quantiles(sketch)


def test_a_negative_latency_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="negative values"):
        encode_bins(_sketch([-1.0]))


@settings(max_examples=300, deadline=None)
@given(latency_lists)
def test_encoding_then_decoding_keeps_every_quantile(values: list[float]) -> None:
    sketch = _sketch(values)
    bins = encode_bins(sketch)
    decoded = decode_bins(json.loads(json.dumps(bins)))  # as stored: through JSON text
    assert _quantiles(decoded) == _quantiles(sketch)
    assert decoded.count == len(values)
    assert encode_bins(decoded) == bins


@settings(max_examples=200, deadline=None)
@given(latency_lists, latency_lists)
def test_merging_decoded_sketches_is_decoding_merged_bins(a: list[float], b: list[float]) -> None:
    bins_a, bins_b = encode_bins(_sketch(a)), encode_bins(_sketch(b))
    merged_sketch = decode_bins(bins_a)
    merged_sketch.merge(decode_bins(bins_b))
    merged_bins = add_bins(bins_a, bins_b)
    assert encode_bins(merged_sketch) == merged_bins
    assert _quantiles(merged_sketch) == _quantiles(decode_bins(merged_bins))
    # ... and both are the sketch of every value at once.
    assert merged_bins == encode_bins(_sketch(a + b))


def test_percentiles_are_rounded_half_even_to_a_microsecond() -> None:
    sketch = decode_bins({"zero": 0, "bins": {"116": 1, "231": 1}})
    # ranks q * (2 - 1) < 1 all fall in the first bin; q = 1 reaches the second
    assert _quantiles(sketch) == [10.074696689511441] * 3
    assert [percentile_ms(sketch, q) for q in (0.0, 1.0)] == [
        Decimal("10.075"),
        Decimal("100.495"),
    ]
    # Bin 1221 is 39944775034.7705 ms (absurd, but exactly a half): to the even neighbour.
    assert percentile_ms(decode_bins({"zero": 0, "bins": {"1221": 1}}), 0.5) == Decimal(
        "39944775034.770"
    )
    assert percentile_ms(DDSketch(RELATIVE_ACCURACY), 0.5) is None
    assert str(percentile_ms(_sketch([0.0]), 0.5)) == "0.000"


# --- rows --------------------------------------------------------------------------------------


def _sample(latency: float, status: int | str = 200, second: int = 0) -> RequestSample:
    return RequestSample("trading-api", "/orders", latency, status, T0 + timedelta(seconds=second))


def _window(samples: list[RequestSample]) -> MinuteWindow:
    window = MinuteWindow("trading-api", "/orders", M0, SLOS)
    for sample in samples:
        window.add(sample)
    return window


def test_a_window_row_holds_counts_slo_goods_bins_and_percentiles() -> None:
    row = window_row(_window([_sample(10.0), _sample(150.0, 503), _sample(0.0, "error")]))
    assert row == {
        "service": "trading-api",
        "endpoint": "/orders",
        "minute": "2026-03-02T09:00:00+00:00",
        "bucket_start": T0,
        "total": 3,
        "errors": 2,
        "slo_good": {"api-availability": 1, "api-latency": 2},
        "latency_bins": {"zero": 1, "bins": {"116": 1, "251": 1}},
        # ranks q * (3 - 1) = 1, 1.9, 1.98 of (0, 10, 150 ms) all fall in bin 116
        "p50_ms": Decimal("10.075"),
        "p95_ms": Decimal("10.075"),
        "p99_ms": Decimal("10.075"),
    }


def test_merging_into_a_stored_row_equals_the_row_of_all_samples() -> None:
    first = [_sample(float(n), 500 if n % 7 == 0 else 200, n % 60) for n in range(1, 80)]
    second = [_sample(float(n * 3), 200, n % 60) for n in range(1, 50)]
    stored = json.loads(json.dumps(window_row(_window(first)), default=str))  # as read back
    stored["bucket_start"] = T0
    merged = window_row(_window(second), stored)
    assert merged == window_row(_window(first + second))
    assert (merged["total"], merged["errors"], merged["slo_good"]) == (
        128,
        11,
        {"api-availability": 117, "api-latency": 112},  # 68 + 49 not 5xx; 79 + 33 < 100 ms
    )


def test_the_service_window_counts_only_service_wide_slos() -> None:
    fast = SLO(
        "orders-fast", "trading-api", "latency", Decimal(90), Decimal(50), endpoint="/orders"
    )
    aggregator = MinuteAggregator((AVAILABILITY, fast))
    aggregator.add_many([_sample(10.0), _sample(60.0, 502)])
    service, orders = aggregator.close(T0 + timedelta(minutes=1))
    assert window_row(service)["slo_good"] == {"api-availability": 1}
    assert window_row(orders)["slo_good"] == {"api-availability": 1, "orders-fast": 1}


def test_names_and_keys() -> None:
    assert tracking_name(3) == "slo:telemetry.requests:3"
    assert minute_key(datetime(2026, 3, 2, 10, 0, tzinfo=UTC)) == "2026-03-02T10:00:00+00:00"


# --- records -----------------------------------------------------------------------------------


def test_a_record_decodes_to_a_sample() -> None:
    value = (
        b'{"service": "trading-api", "endpoint": "/orders", "latency_ms": 12.5, '
        b'"status": 200, "time": "2026-03-02T10:00:00+01:00"}'
    )
    assert decode_sample(value) == RequestSample("trading-api", "/orders", 12.5, 200, T0)


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        (b"{", "message", "message=b'{' is not JSON: unexpected end of data: line 1 column 2 "
         "(char 1)"),
        (b"\xff", "message", "message=b'\\xff' is not JSON: str is not valid UTF-8: surrogates "
         "not allowed: line 1 column 1 (char 0)"),
        (b'{"latency_ms": NaN}', "message", "message=b'{\"latency_ms\": NaN}' is not JSON: "
         "unexpected character, expected a JSON value: line 1 column 16 (char 15)"),
        (b"[1]", "message", "message=b'[1]' is a list, not a JSON object"),
        (b'{"service": "a", "endpoint": "/b", "latency_ms": -3, "status": 200, '
         b'"time": "2026-03-02T10:00:00Z"}', "latency_ms", "latency_ms=-3 must be >= 0"),
        (b'{"service": "a", "endpoint": "/b", "latency_ms": 1, "status": 200}',
         "time", "time=None is missing"),
    ],
)  # fmt: skip
def test_a_bad_record_names_its_field(value: bytes, field: str, message: str) -> None:
    with pytest.raises(SampleError) as caught:
        decode_sample(value)
    assert (caught.value.field, str(caught.value)) == (field, message)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"[" * 100_000, "is not JSON: depth limit exceeded: line 1 column 1026 (char 1025)"),
        (b'{"n": 1e400}', "is not JSON: number is infinity when parsed as double: line 1 "
         "column 7 (char 6)"),
    ],
)  # fmt: skip
def test_a_record_too_deep_or_too_long_is_a_rejection_not_a_crash(
    value: bytes, reason: str
) -> None:
    with pytest.raises(SampleError) as caught:
        decode_sample(value)
    assert (caught.value.field, caught.value.value, caught.value.reason) == (
        "message", value, reason,
    )  # fmt: skip


# --- alerts ------------------------------------------------------------------------------------


def test_an_alert_as_json_and_its_breach_id() -> None:
    alert = Alert(
        slo="api-availability",
        service="trading-api",
        severity="page",
        rule="page-1h",
        long_window=timedelta(hours=1),
        short_window=timedelta(minutes=5),
        burn_rate_long=Decimal("40.000000000"),
        burn_rate_short=Decimal("0E-9"),
        threshold=Decimal("14.4"),
        sli_long=Decimal("0.980000000"),
        sli_short=Decimal("1.000000000"),
        window_end=datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
        error_budget_remaining=Decimal("-39.000000000"),
    )
    assert breach_id(alert) == "api-availability/page-1h/2026-03-02T10:00:00+00:00"
    assert alert_json(alert) == (
        b'{"breach_id":"api-availability/page-1h/2026-03-02T10:00:00+00:00",'
        b'"burn_rate_long":"40.000000000","burn_rate_short":"0.000000000",'
        b'"error_budget_remaining":"-39.000000000","long_window_minutes":60,'
        b'"rule":"page-1h","service":"trading-api","severity":"page",'
        b'"short_window_minutes":5,"sli_long":"0.980000000","sli_short":"1.000000000",'
        b'"slo":"api-availability","threshold":"14.4","window_end":"2026-03-02T10:00:00+00:00"}'
    )


# --- add_all: DDSketch.add in bulk ----------------------------------------------------------

_LATENCIES = st.lists(
    st.one_of(
        st.floats(min_value=0.0, max_value=1e9, allow_nan=False),
        st.sampled_from([0.0, -0.0, 1e-300, 5e-324, 12.5, 100.0, 99.999]),
    ),
    max_size=200,
)


@settings(max_examples=300)
@given(before=_LATENCIES, values=_LATENCIES)
def test_add_all_is_add_one_by_one(before: list[float], values: list[float]) -> None:
    one, many = DDSketch(RELATIVE_ACCURACY), DDSketch(RELATIVE_ACCURACY)
    for v in before:  # a sketch that already holds values
        one.add(v)
        many.add(v)
    for v in values:
        one.add(v)
    add_all(many, values)
    assert encode_bins(many) == encode_bins(one)
    assert (many.count, many.sum, many._min, many._max) == (one.count, one.sum, one._min, one._max)
    for q in (0.0, 0.5, 0.95, 0.99, 1.0):
        assert many.get_quantile_value(q) == one.get_quantile_value(q)


def test_add_all_refuses_a_negative_latency_and_changes_nothing() -> None:
    sketch = DDSketch(RELATIVE_ACCURACY)
    with pytest.raises(ValueError, match=r"^latency -1.5 is negative; a latency never is$"):
        add_all(sketch, [3.0, -1.5])
    assert (sketch.count, encode_bins(sketch)) == (0, {"zero": 0, "bins": {}})
