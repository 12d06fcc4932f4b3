"""SLO projections (streams/slo.py): samples, windows, SLIs, budgets and burn-rate alerts.

Pure logic, exact values: every rate below is computed by hand from the counts.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import InvalidField
from streams.slo import (
    ALL_ENDPOINTS,
    BURN_RATE_RULES,
    SLO,
    Alert,
    BurnRateEvaluator,
    BurnRateRule,
    ConfigError,
    MinuteAggregator,
    MinuteWindow,
    RequestSample,
    SampleError,
    _checked_sample,
    _plain_sample,
    error_budget,
    load_slos,
    merge_windows,
    rollup,
    sample_from_mapping,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a whole minute
M0 = int(T0.timestamp()) // 60
AVAILABILITY = SLO("api-availability", "trading-api", "availability", Decimal("99.95"))
LATENCY = SLO("api-latency", "trading-api", "latency", Decimal(95), Decimal(100))
FAST = SLO("api-fast", "trading-api", "latency", Decimal(90), Decimal(50), endpoint="/orders")
RULES = {rule.name: rule for rule in BURN_RATE_RULES}


def _sample(
    latency: float | Decimal = 10.0,
    status: int | str = 200,
    at: datetime = T0,
    endpoint: str = "/orders",
    service: str = "trading-api",
) -> RequestSample:
    return RequestSample(service, endpoint, latency, status, at)


# --- samples ---------------------------------------------------------------------------------

GOOD = {
    "service": "trading-api",
    "endpoint": "/orders",
    "latency_ms": "12.5",
    "status": 200,
    "time": "2026-03-02T10:00:00+01:00",
}


def test_a_valid_mapping_becomes_a_sample_in_utc() -> None:
    sample = sample_from_mapping(GOOD)
    assert sample == RequestSample("trading-api", "/orders", Decimal("12.5"), 200, T0)
    assert sample_from_mapping({**GOOD, "latency_ms": 7.25, "status": "error"}).latency_ms == 7.25


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"service": ""}, "service='' must not be empty"),
        ({"service": 7}, "service=7 is a int, not a string"),
        ({"endpoint": None}, "endpoint=None is a NoneType, not a string"),
        ({"latency_ms": -3}, "latency_ms=-3 must be >= 0"),
        ({"latency_ms": "fast"}, "latency_ms='fast' is not a number"),
        ({"latency_ms": float("nan")}, "latency_ms=nan must be finite"),
        ({"latency_ms": "sNaN"}, "latency_ms='sNaN' must be finite"),
        ({"latency_ms": "-Infinity"}, "latency_ms='-Infinity' must be finite"),
        ({"latency_ms": True}, "latency_ms=True is not a number"),
        ({"status": 700}, "status=700 must be an HTTP status 100-599, 'ok' or 'error'"),
        ({"status": "failed"}, "status='failed' must be an HTTP status 100-599, 'ok' or 'error'"),
        ({"status": True}, "status=True must be an HTTP status 100-599, 'ok' or 'error'"),
        ({"time": "yesterday"}, "time='yesterday' is not an ISO 8601 timestamp"),
        ({"time": "2026-03-02T09:00:00"}, "time='2026-03-02T09:00:00' has no time zone; give UTC"),
        ({"time": 1772442000}, "time=1772442000 is a int, not a timestamp"),
    ],
)
def test_a_bad_sample_names_the_field_and_value(override: dict[str, object], message: str) -> None:
    with pytest.raises(SampleError) as caught:
        sample_from_mapping({**GOOD, **override})
    assert str(caught.value) == message
    field = next(iter(override))
    assert (caught.value.field, caught.value.value) == (field, override[field])
    assert isinstance(caught.value, InvalidField) and isinstance(caught.value, ValueError)


def test_a_time_past_the_year_9999_in_utc_is_named() -> None:
    with pytest.raises(SampleError) as caught:
        sample_from_mapping({**GOOD, "latency_ms": 1.5, "time": "9999-12-31T23:59:59-05:00"})
    assert str(caught.value) == (
        "time='9999-12-31T23:59:59-05:00' is out of range once converted to UTC"
    )


_NAMES = st.sampled_from(["trading-api", " trading-api ", "", " ", "x" * 200, "x" * 201])
_TIMES = st.sampled_from([
    "2026-03-02T10:00:00+01:00", " 2026-03-02T09:00:00.125Z ", "2026-03-02T09:00:00",
    "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00", "yesterday", "",
])  # fmt: skip
_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 1000), st.floats(), st.decimals(), st.text()
)


@settings(max_examples=500)
@given(
    service=st.one_of(_NAMES, _VALUES),
    endpoint=st.one_of(_NAMES, _VALUES),
    latency=st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 12.5, "12.5", 7]), _VALUES),
    status=st.one_of(st.sampled_from([100, 200, 500, 599, 600, 99, "ok", "error"]), _VALUES),
    moment=st.one_of(_TIMES, _VALUES),
    drop=st.sampled_from([None, "service", "latency_ms", "time"]),
)
def test_the_hot_path_makes_the_sample_the_full_checks_make(
    service: object, endpoint: object, latency: object, status: object, moment: object,
    drop: str | None,
) -> None:  # fmt: skip
    m = {"service": service, "endpoint": endpoint, "latency_ms": latency, "status": status,
         "time": moment}  # fmt: skip
    if drop is not None:
        del m[drop]
    fast = _plain_sample(m)
    try:
        checked = _checked_sample(m)
    except SampleError:
        assert fast is None  # the full checks name what is wrong
        return
    if fast is not None:
        assert (fast, type(fast.latency_ms), fast.time.tzinfo) == (
            checked, type(checked.latency_ms), checked.time.tzinfo,
        )  # fmt: skip
    assert sample_from_mapping(m) == checked


def test_the_hot_path_takes_what_services_send() -> None:
    m = {"service": "trading-api", "endpoint": "/orders", "latency_ms": 12.5, "status": 200,
         "time": "2026-03-02T10:00:00+01:00"}  # fmt: skip
    assert _plain_sample(m) == RequestSample("trading-api", "/orders", 12.5, 200, T0)


def test_a_missing_field_or_a_non_mapping_is_named() -> None:
    missing = {k: v for k, v in GOOD.items() if k != "latency_ms"}
    with pytest.raises(SampleError, match=r"^latency_ms=None is missing$"):
        sample_from_mapping(missing)
    with pytest.raises(SampleError, match=r"^sample=\[1\] is a list, not a mapping$"):
        sample_from_mapping([1])


# --- configuration -------------------------------------------------------------------------


def test_the_packaged_config_holds_the_four_default_slos() -> None:
    assert load_slos() == (
        SLO("trading-api-availability", "trading-api", "availability", Decimal("99.95")),
        SLO("trading-api-latency-p95", "trading-api", "latency", Decimal(95), Decimal(100)),
        SLO("trading-api-error-rate", "trading-api", "error_rate", Decimal("99.9")),
        SLO("trade-execution-latency-p95", "trade-execution", "latency", Decimal(95), Decimal(50)),
    )
    assert {s.window_days for s in load_slos()} == {30}


GOOD_TOML = 'name = "x"\nservice = "trading-api"\nkind = "availability"\nobjective = 99.9\n'


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            GOOD_TOML.replace('"availability"', '"throughput"'),
            "slo 'x': kind='throughput' must be one of availability, error_rate, latency",
        ),
        (
            GOOD_TOML.replace("99.9", "100"),
            "slo 'x': objective=100 must be between 0 and 100 (exclusive)",
        ),
        (
            GOOD_TOML.replace("99.9", "0.0"),
            "slo 'x': objective=0.0 must be between 0 and 100 (exclusive)",
        ),
        (
            GOOD_TOML.replace("99.9", "100.5"),
            "slo 'x': objective=100.5 must be between 0 and 100 (exclusive)",
        ),
        (
            GOOD_TOML.replace("99.9", '"99.9"'),
            "slo 'x': objective='99.9' must be a number (percent)",
        ),
        (
            GOOD_TOML.replace('"availability"', '"latency"'),
            "slo 'x': threshold_ms=None is required for a latency SLO",
        ),
        (
            GOOD_TOML + "threshold_ms = 100\n",
            "slo 'x': threshold_ms=100 applies only to latency SLOs",
        ),
        (
            GOOD_TOML + "treshold_ms = 100\n",
            "slo 'x': treshold_ms=100 is not a known field (known: name, service, endpoint, "
            "kind, objective, threshold_ms, window_days, description)",
        ),
        (GOOD_TOML.replace('service = "trading-api"\n', ""), "slo 'x': service=None is missing"),
        (GOOD_TOML.replace('name = "x"\n', ""), "slo '#1': name=None is missing"),
        (
            GOOD_TOML + "window_days = 0\n",
            "slo 'x': window_days=0 must be a whole number of days, 1 to 366",
        ),
    ],
)
def test_a_bad_slo_names_the_slo_and_the_field(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "slo.toml"
    path.write_text("[[slo]]\n" + table)
    with pytest.raises(ConfigError) as caught:
        load_slos(path)
    assert str(caught.value) == message


def test_bad_files_are_refused_whole(tmp_path: Path) -> None:
    path = tmp_path / "slo.toml"
    path.write_text("[[slo]]\n" + GOOD_TOML + "[[slo]]\n" + GOOD_TOML)
    with pytest.raises(ConfigError, match=r"^slo 'x': name='x' is defined twice$"):
        load_slos(path)
    path.write_text("")
    with pytest.raises(ConfigError, match=r"^the file defines no \[\[slo\]\] tables$"):
        load_slos(path)
    path.write_text("[[slo]\n")
    with pytest.raises(ConfigError, match=r" is not valid TOML: "):
        load_slos(path)


# --- windows --------------------------------------------------------------------------------


def test_minute_windows_count_per_endpoint_and_merge_into_the_service() -> None:
    aggregator = MinuteAggregator([AVAILABILITY, LATENCY, FAST])
    aggregator.add_many(
        [
            _sample(20, 200, T0 + timedelta(seconds=1)),
            _sample(60, 503, T0 + timedelta(seconds=2)),
            _sample(150, "ok", T0 + timedelta(seconds=59)),
            _sample(Decimal("99.999"), "error", T0 + timedelta(seconds=3), endpoint="/quotes"),
            _sample(5, 404, T0 + timedelta(minutes=1), endpoint="/quotes"),
        ]
    )
    aggregator.add(_sample(1, 200, T0, service="market-data"))
    assert len(aggregator) == 4
    closed = aggregator.close(T0 + timedelta(seconds=59, microseconds=999999))
    assert closed == []
    closed = aggregator.close(T0 + timedelta(minutes=1))
    assert [(w.service, w.endpoint, w.start - M0, w.minutes) for w in closed] == [
        ("market-data", ALL_ENDPOINTS, 0, 1),
        ("market-data", "/orders", 0, 1),
        ("trading-api", ALL_ENDPOINTS, 0, 1),
        ("trading-api", "/orders", 0, 1),
        ("trading-api", "/quotes", 0, 1),
    ]
    service, orders, quotes = closed[2:]
    assert (orders.total, orders.good, orders.errors, orders.below) == (3, 2, 1, [1, 2])
    assert (quotes.total, quotes.good, quotes.errors, quotes.below) == (1, 0, 1, [0, 1])
    assert (service.total, service.good, service.errors, service.below) == (4, 2, 2, [1, 3])
    assert orders.thresholds == service.thresholds == (50.0, 100.0)
    assert orders.sli(FAST) == Decimal("0.333333333")  # 1 of 3 under 50 ms, half-even
    with pytest.raises(ValueError, match="does not apply"):
        service.sli(FAST)  # an /orders SLO does not cover the whole service
    row = dict(service.to_row())
    percentiles = {k: row.pop(k) for k in ("p50_ms", "p95_ms", "p99_ms")}
    assert row == {
        "service": "trading-api",
        "endpoint": "*",
        "bucket_start": T0,
        "minutes": 1,
        "total": 4,
        "good": 2,
        "errors": 2,
        "slo_good": {"api-availability": 2, "api-latency": 3},
    }
    # sorted 20, 60, 99.999, 150: p50 is the 2nd (rank 0.5 * 3 = 1.5), p95 and p99 the 3rd
    for key, exact in (("p50_ms", 60), ("p95_ms", 99.999), ("p99_ms", 99.999)):
        value = percentiles[key]
        assert isinstance(value, Decimal)
        assert abs(float(value) - exact) <= 0.01 * exact + 0.001
    assert len(aggregator) == 1  # the /quotes minute 1 stays open


def test_a_window_refuses_samples_and_merges_outside_its_scope() -> None:
    window = MinuteWindow("trading-api", "/orders", M0, [AVAILABILITY])
    window.add(_sample(at=T0 + timedelta(seconds=30)))
    with pytest.raises(ValueError, match="outside window"):
        window.add(_sample(at=T0 + timedelta(minutes=1)))
    with pytest.raises(ValueError, match="is not /orders"):
        window.add(_sample(endpoint="/quotes"))
    with pytest.raises(ValueError, match="cannot merge"):
        window.merge(MinuteWindow("market-data", "/orders", M0))
    with pytest.raises(ValueError, match="cannot merge endpoint /quotes"):
        window.merge(MinuteWindow("trading-api", "/quotes", M0, [AVAILABILITY]))
    assert window.percentile(0.5) is not None
    assert MinuteWindow("trading-api", "/orders", M0).percentile(0.5) is None
    with pytest.raises(ValueError, match=r"q=95 must be between 0 and 1"):
        window.percentile(95)


def test_rollups_build_larger_windows_from_minutes() -> None:
    aggregator = MinuteAggregator([AVAILABILITY])
    aggregator.add_many(
        _sample(10, 503 if minute % 10 == 0 else 200, T0 + timedelta(minutes=minute, seconds=5))
        for minute in range(60)
    )
    minutes = [w for w in aggregator.close(T0 + timedelta(hours=1)) if w.endpoint != "*"]
    fives = rollup(minutes, 5)
    assert [(w.start - M0, w.minutes, w.total, w.errors) for w in fives[:3]] == [
        (0, 5, 5, 1),
        (5, 5, 5, 0),
        (10, 5, 5, 1),
    ]
    hour = merge_windows(minutes)
    assert (hour.start, hour.end, hour.total, hour.errors) == (M0, M0 + 60, 60, 6)
    assert rollup(fives, 60)[0].total == 60
    assert hour.sli(AVAILABILITY) == Decimal("0.9")
    assert hour.burn_rate(AVAILABILITY) == Decimal(200)  # 10 % bad / 0.05 % budget


def _exact_quantile(values: list[float], q: float) -> float:
    """The value DDSketch approximates: the floor(q (n - 1))-th smallest (0-based)."""
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def test_percentiles_are_within_one_percent_of_the_exact_ones() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(3.5, 0.8) for _ in range(20_000)]
    aggregator = MinuteAggregator()
    aggregator.add_many(
        _sample(v, 200, T0 + timedelta(seconds=i * 600 / len(values))) for i, v in enumerate(values)
    )
    windows = [w for w in aggregator.close(T0 + timedelta(hours=1)) if w.endpoint == "*"]
    assert len(windows) == 10
    merged = merge_windows(windows)
    for q in (0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999):
        exact = _exact_quantile(values, q)
        estimate = merged.percentile(q)
        assert estimate is not None
        assert abs(estimate - exact) <= 0.01 * exact, (q, estimate, exact)


def test_slis_and_error_budgets_are_exact() -> None:
    window = MinuteWindow("trading-api", "/orders", M0, [AVAILABILITY, LATENCY])
    window.total, window.errors, window.below = 10_000, 15, [9_600]
    assert window.sli(AVAILABILITY) == Decimal("0.9985")
    assert window.sli(LATENCY) == Decimal("0.96")
    assert window.burn_rate(AVAILABILITY) == Decimal(3)  # 0.15 % bad / 0.05 % budget
    assert window.burn_rate(LATENCY) == Decimal("0.8")  # 4 % slow / 5 % budget
    budget = error_budget(AVAILABILITY, 1_000_000, 250)
    assert (budget.sli, budget.budget, budget.consumed, budget.remaining) == (
        Decimal("0.99975"),
        Decimal("0.0005"),
        Decimal("0.5"),
        Decimal("0.5"),
    )
    spent = error_budget(AVAILABILITY, 3_000, 4)
    assert (spent.consumed, spent.remaining) == (Decimal("2.666666667"), Decimal("-1.666666667"))
    empty = error_budget(AVAILABILITY, 0, 0)
    assert (empty.sli, empty.consumed, empty.remaining) == (None, Decimal(0), Decimal(1))
    assert MinuteWindow("trading-api", "/orders", M0, [AVAILABILITY]).sli(AVAILABILITY) is None


_LATENCIES = st.sampled_from([0.0, 0.4, 3.0, 12.5, 49.99, 50.0, 99.0, 100.0, 250.0, 1200.0])
_SAMPLES = st.lists(
    st.tuples(st.integers(0, 5), _LATENCIES, st.sampled_from([200, 404, 500, 503, "ok", "error"])),
    min_size=1,
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(samples=_SAMPLES, order=st.randoms(use_true_random=False), data=st.data())
def test_merging_minute_windows_in_any_grouping_gives_the_same_window(
    samples: list[tuple[int, float, int | str]], order: random.Random, data: st.DataObject
) -> None:
    slos = [AVAILABILITY, LATENCY, FAST]
    aggregator = MinuteAggregator(slos)
    aggregator.add_many(
        _sample(lat, status, T0 + timedelta(minutes=m)) for m, lat, status in samples
    )
    minutes = aggregator.close(T0 + timedelta(hours=1))
    minutes = [w for w in minutes if w.endpoint != "*"]
    order.shuffle(minutes)
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(minutes) - 1)), max_size=4)))
    groups = [minutes[a:b] for a, b in zip([0, *cuts], [*cuts, len(minutes)], strict=True) if a < b]
    regrouped = merge_windows([merge_windows(g) for g in groups])
    whole = MinuteWindow("trading-api", "/orders", M0, slos)
    whole.end = M0 + 6  # one window over all six minutes, fed sample by sample
    for m, lat, status in samples:
        whole.add(_sample(lat, status, T0 + timedelta(minutes=m)))
    first = min(m for m, _, _ in samples)
    last = max(m for m, _, _ in samples)
    assert (regrouped.start - M0, regrouped.end - M0) == (first, last + 1)
    assert (regrouped.total, regrouped.errors, regrouped.below) == (
        whole.total,
        whole.errors,
        whole.below,
    )
    quantiles = (0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0)
    assert [regrouped.percentile(q) for q in quantiles] == [whole.percentile(q) for q in quantiles]
    assert regrouped.to_row()["slo_good"] == whole.to_row()["slo_good"]


# --- burn-rate alerts ----------------------------------------------------------------------


def _minutes(evaluator: BurnRateEvaluator, end: int, ages: range, total: int, errors: int) -> None:
    """``total`` samples, ``errors`` of them 5xx, in each minute ``end - age`` for ``ages``."""
    batch: list[RequestSample] = []
    for age in ages:
        start = T0 + timedelta(minutes=end - age)
        batch.extend(
            _sample(10, 500 if i < errors else 200, start + timedelta(seconds=i * 59 / total))
            for i in range(total)
        )
    evaluator.add_many(batch)


def _evaluator(rule: str | None = None) -> BurnRateEvaluator:
    rules = BURN_RATE_RULES if rule is None else (RULES[rule],)
    return BurnRateEvaluator([AVAILABILITY], rules)


END = 4400  # minutes after T0: the evaluations happen at T0 + END minutes
AT = T0 + timedelta(minutes=END)


def test_two_percent_errors_for_an_hour_pages_with_burn_rate_40() -> None:
    evaluator = _evaluator("page-1h")
    _minutes(evaluator, END, range(1, 61), 100, 2)
    assert evaluator.evaluate(AT) == [
        Alert(
            slo="api-availability",
            service="trading-api",
            severity="page",
            rule="page-1h",
            long_window=timedelta(hours=1),
            short_window=timedelta(minutes=5),
            burn_rate_long=Decimal(40),
            burn_rate_short=Decimal(40),
            threshold=Decimal("14.4"),
            sli_long=Decimal("0.98"),
            sli_short=Decimal("0.98"),
            window_end=AT,
            error_budget_remaining=Decimal(-39),  # 120 bad of 6,000: 40 budgets consumed
        )
    ]


@pytest.mark.parametrize(
    ("rule", "per_minute", "hot", "cold", "long_rate", "short_rate"),
    [
        # page: > 14.4 over 1 h and 5 min; 2 errors in 100 a minute burn 40
        ("page-1h", 100, range(1, 61), range(0), "40", "40"),
        ("page-1h", 100, range(6, 61), range(1, 6), "36.666666667", "0"),  # long only
        ("page-1h", 100, range(1, 6), range(6, 61), "3.333333333", "40"),  # short only
        # page: > 6 over 6 h and 30 min; 1 error in 100 a minute burns 20
        ("page-6h", 100, range(1, 361), range(0), "20", "20"),
        ("page-6h", 100, range(31, 361), range(1, 31), "18.333333333", "0"),
        ("page-6h", 100, range(1, 31), range(31, 361), "1.666666667", "20"),
        # ticket: > 1 over 3 d and 6 h; 1 error in 10 a minute, every 60th minute: 3.333...
        ("ticket-3d", 10, range(60, 4321, 60), range(1, 4321), "3.333333333", "3.333333333"),
        ("ticket-3d", 10, range(420, 4321, 60), range(1, 4321), "3.055555556", "0"),
        ("ticket-3d", 10, range(60, 361, 60), range(1, 4321), "0.277777778", "3.333333333"),
    ],
)
def test_each_rule_fires_only_when_both_windows_burn_too_fast(
    rule: str, per_minute: int, hot: range, cold: range, long_rate: str, short_rate: str
) -> None:
    evaluator = _evaluator(rule)
    errors = 2 if rule == "page-1h" else 1
    hot_ages = set(hot)
    for age in sorted(set(cold) | hot_ages):
        _minutes(evaluator, END, range(age, age + 1), per_minute, errors if age in hot_ages else 0)
    spec = RULES[rule]
    long = evaluator.burn_rate("api-availability", spec.long_minutes, AT)
    short = evaluator.burn_rate("api-availability", spec.short_minutes, AT)
    assert (long, short) == (Decimal(long_rate), Decimal(short_rate))
    alerts = evaluator.evaluate(AT)
    both = long > spec.threshold and short > spec.threshold
    assert [(a.rule, a.burn_rate_long, a.burn_rate_short) for a in alerts] == (
        [(rule, long, short)] if both else []
    )


@pytest.mark.parametrize(
    ("errors_by_age", "long_rate", "short_rate"),
    [
        (dict.fromkeys(range(1, 61), 2), "40", "40"),
        # the long window exactly at the threshold, the short one above it
        (
            {
                **dict.fromkeys(range(1, 6), 4),
                **dict.fromkeys(range(6, 51), 2),
                **dict.fromkeys(range(51, 61), 1),
            },
            "40",
            "80",
        ),
        # the short window exactly at the threshold, the long one above it
        ({**dict.fromkeys(range(1, 6), 2), **dict.fromkeys(range(6, 61), 3)}, "58.333333333", "40"),
    ],
)
def test_a_burn_rate_equal_to_the_threshold_does_not_fire(
    errors_by_age: dict[int, int], long_rate: str, short_rate: str
) -> None:
    for threshold, fires in ((Decimal(40), False), (Decimal("39.999"), True)):
        evaluator = BurnRateEvaluator(
            [AVAILABILITY], [BurnRateRule("edge", "page", 60, 5, threshold)]
        )
        for age, errors in errors_by_age.items():
            _minutes(evaluator, END, range(age, age + 1), 100, errors)
        assert evaluator.burn_rate("api-availability", 60, AT) == Decimal(long_rate)
        assert evaluator.burn_rate("api-availability", 5, AT) == Decimal(short_rate)
        assert len(evaluator.evaluate(AT)) == int(fires)


def test_an_alert_fires_once_and_re_arms_after_it_resets() -> None:
    evaluator = _evaluator("page-1h")
    key = ("api-availability", "page-1h")

    def at(minute: int) -> datetime:
        return T0 + timedelta(minutes=minute)

    _minutes(evaluator, 60, range(1, 61), 100, 2)  # minutes 0..59 hot
    assert [a.window_end for a in evaluator.evaluate(at(60))] == [at(60)]
    assert evaluator.firing == {key}
    _minutes(evaluator, 61, range(1, 2), 100, 2)  # minute 60 hot: still firing, no new alert
    assert evaluator.evaluate(at(61)) == []
    assert evaluator.evaluate(at(61)) == []
    _minutes(evaluator, 66, range(1, 6), 100, 0)  # minutes 61..65 clean: short window cools
    assert evaluator.evaluate(at(66)) == []
    assert evaluator.firing == set()
    assert evaluator.burn_rate("api-availability", 60, at(66)) == Decimal("36.666666667")
    _minutes(evaluator, 71, range(1, 6), 100, 2)  # minutes 66..70 hot again: fires again
    [again] = evaluator.evaluate(at(71))
    assert (again.burn_rate_long, again.burn_rate_short) == (Decimal("36.666666667"), Decimal(40))
    assert again.window_end == at(71)


def test_default_rules_fire_together_when_all_windows_burn() -> None:
    evaluator = BurnRateEvaluator([AVAILABILITY, LATENCY])
    _minutes(evaluator, END, range(1, 61), 100, 2)
    assert [(a.slo, a.severity, a.rule) for a in evaluator.evaluate(AT)] == [
        ("api-availability", "page", "page-1h"),
        ("api-availability", "page", "page-6h"),
        ("api-availability", "ticket", "ticket-3d"),
    ]  # every sample took 10 ms: the latency SLO burns nothing


def test_samples_of_other_services_and_empty_windows_burn_nothing() -> None:
    evaluator = _evaluator()
    elsewhere = _sample(10, 500, AT - timedelta(minutes=1), service="market-data")
    evaluator.add_many([elsewhere] * 100)
    assert evaluator.evaluate(AT) == []
    assert evaluator.burn_rate("api-availability", 60, AT) == Decimal(0)
    with pytest.raises(KeyError, match="no SLO named 'nope'"):
        evaluator.burn_rate("nope", 60, AT)


def test_minutes_older_than_three_days_still_count_in_the_30_day_budget() -> None:
    evaluator = _evaluator()
    ring = 3 * 24 * 60 + 1
    _minutes(evaluator, 1, range(1, 2), 100, 10)  # minute 0: 10 bad of 100
    _minutes(evaluator, ring + 1, range(1, 2), 100, 0)  # minute 4321 reuses minute 0's slot
    _minutes(evaluator, 1, range(1, 2), 100, 10)  # minute 0 again: late, straight to the hours
    now = T0 + timedelta(minutes=ring + 1)
    budget = evaluator.error_budget("api-availability", now)
    assert (budget.total, budget.bad) == (300, 20)
    assert (budget.consumed, budget.remaining) == (
        Decimal("133.333333333"),
        Decimal("-132.333333333"),
    )
    assert evaluator.burn_rate("api-availability", 4320, now) == Decimal(0)
    later = T0 + timedelta(days=31)
    assert evaluator.error_budget("api-availability", later).total == 100  # minute 4321 only
    assert evaluator.dropped == 0


# --- counting minute windows (add_window) -----------------------------------------------------

FAST_QUOTES = SLO("quotes-fast", "trading-api", "latency", Decimal(90), Decimal(50), "/quotes")


def _closed_windows(samples: list[RequestSample], slos: list[SLO]) -> list[MinuteWindow]:
    aggregator = MinuteAggregator(slos)
    aggregator.add_many(samples)
    return aggregator.close(datetime.max.replace(tzinfo=UTC))


def _state(
    evaluator: BurnRateEvaluator,
    now: datetime,
    windows: tuple[int, ...] = (1, 5, 30, 60, 360, 4320),
) -> list[tuple[object, ...]]:
    """The burn rates over ``windows`` (minutes) and the budget of every SLO at ``now``."""
    return [
        (slo.name, minutes, evaluator.burn_rate(slo.name, minutes, now))
        for slo in evaluator.slos
        for minutes in windows
    ] + [(slo.name, evaluator.error_budget(slo.name, now)) for slo in evaluator.slos]


def test_minute_windows_burn_exactly_as_their_samples() -> None:
    slos = [AVAILABILITY, LATENCY, FAST, FAST_QUOTES]
    # Minutes 0..59 before AT: 100 requests each, on /orders and /quotes; the last hour has
    # 2 errors a minute on /orders and, on /quotes, 10 requests a minute slower than 100 ms.
    samples = [
        _sample(
            150 if endpoint == "/quotes" and i < 10 else 10 + i % 45,
            500 if endpoint == "/orders" and i < 2 else 200,
            AT - timedelta(minutes=age) + timedelta(seconds=i * 0.5),
            endpoint=endpoint,
        )
        for age in range(1, 61)
        for endpoint in ("/orders", "/quotes")
        for i in range(100)
    ]
    by_samples, by_windows = BurnRateEvaluator(slos), BurnRateEvaluator(slos)
    by_samples.add_many(samples)
    windows = _closed_windows(samples, slos)
    assert len(windows) == 180  # 60 minutes of /orders, /quotes and "*"
    for window in windows:
        by_windows.add_window(window)  # "*" windows are ignored: no double count
    assert _state(by_windows, AT) == _state(by_samples, AT)
    # availability: 120 errors in 12,000 requests over the hour = 1 % / 0.05 % = burn 20
    assert by_windows.burn_rate("api-availability", 60, AT) == Decimal(20)
    # latency >= 100 ms: the 600 at 150 ms of 12,000 = 5 % / 5 % budget = burn 1
    assert by_windows.burn_rate("api-latency", 60, AT) == Decimal(1)
    # >= 50 ms: 10 + i % 45 for i in 40..44 and 85..89, 10 a minute; /quotes adds its 10
    # at 150 ms: 20 % / 10 % = burn 2 on /quotes, 10 % / 10 % = 1 on /orders
    assert by_windows.burn_rate("quotes-fast", 60, AT) == Decimal(2)
    assert by_windows.burn_rate("api-fast", 60, AT) == Decimal(1)
    alerts = by_windows.evaluate(AT)
    assert alerts == by_samples.evaluate(AT)
    # every window holds the last hour only: burn 20 pages twice and tickets; a burn of 1
    # is not over the ticket's threshold 1, 2 is
    assert [(a.slo, a.rule, a.burn_rate_long, a.burn_rate_short) for a in alerts] == [
        ("api-availability", "page-1h", Decimal(20), Decimal(20)),
        ("api-availability", "page-6h", Decimal(20), Decimal(20)),
        ("api-availability", "ticket-3d", Decimal(20), Decimal(20)),
        ("quotes-fast", "ticket-3d", Decimal(2), Decimal(2)),
    ]


def test_a_late_window_goes_to_the_budget_as_a_late_sample_does() -> None:
    ring = 3 * 24 * 60 + 1
    by_samples, by_windows = _evaluator(), _evaluator()
    batches = [(0, 10), (ring, 0), (0, 10)]  # minute 0, minute 4321 (same slot), 0 again
    for minute, errors in batches:
        samples = [
            _sample(10, 500 if i < errors else 200, T0 + timedelta(minutes=minute, seconds=i / 2))
            for i in range(100)
        ]
        by_samples.add_many(samples)
        for window in _closed_windows(samples, [AVAILABILITY]):
            by_windows.add_window(window)
    now = T0 + timedelta(minutes=ring + 1)
    assert _state(by_windows, now) == _state(by_samples, now)
    budget = by_windows.error_budget("api-availability", now)
    assert (budget.total, budget.bad, budget.remaining) == (300, 20, Decimal("-132.333333333"))


def test_windows_out_of_scope_or_wider_than_a_minute_are_not_counted() -> None:
    evaluator = _evaluator()
    elsewhere = MinuteWindow.from_counts(
        "market-data", "/ticks", M0, [AVAILABILITY], total=100, errors=100, slo_good={}
    )
    evaluator.add_window(elsewhere)
    service = MinuteWindow.from_counts(
        "trading-api", ALL_ENDPOINTS, M0, [AVAILABILITY], total=100, errors=100, slo_good={}
    )
    evaluator.add_window(service)
    assert evaluator.burn_rate("api-availability", 1, T0 + timedelta(minutes=1)) == Decimal(0)
    wide = MinuteWindow("trading-api", "/orders", M0, [AVAILABILITY])
    wide.end = M0 + 5
    with pytest.raises(ValueError, match=r"\+5m .* is not a one-minute window"):
        evaluator.add_window(wide)


def test_a_stored_window_counts_only_the_latency_slos_it_has_counts_for() -> None:
    evaluator = BurnRateEvaluator([AVAILABILITY, LATENCY, FAST])
    # A row written before api-latency existed: its threshold was never counted.
    window = MinuteWindow.from_counts(
        "trading-api",
        "/orders",
        M0,
        evaluator.slos,
        total=200,
        errors=3,
        slo_good={"api-availability": 197, "api-fast": 150},
    )
    assert (window.thresholds, window.below) == ((50.0,), [150])
    evaluator.add_window(window)
    now = T0 + timedelta(minutes=1)
    assert evaluator.burn_rate("api-availability", 1, now) == Decimal(30)  # 1.5 % / 0.05 %
    assert evaluator.burn_rate("api-fast", 1, now) == Decimal("2.5")  # 25 % / 10 %
    assert evaluator.burn_rate("api-latency", 1, now) == Decimal(0)  # nothing counted
    assert evaluator.error_budget("api-latency", now).total == 0


_MINUTE_SAMPLES = st.lists(
    st.tuples(
        st.sampled_from([0, 1, 2, 59, 60, 61, 4320, 4321, 4322, 43_199, 43_300]),
        st.sampled_from(["/orders", "/quotes"]),
        _LATENCIES,
        st.sampled_from([200, 500, "error"]),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(_MINUTE_SAMPLES, min_size=1, max_size=4))
def test_windows_and_samples_always_give_the_same_burn_rates(
    batches: list[list[tuple[int, str, float, int | str]]],
) -> None:
    slos = [AVAILABILITY, LATENCY, FAST, FAST_QUOTES]
    by_samples, by_windows = BurnRateEvaluator(slos), BurnRateEvaluator(slos)
    for batch in batches:  # batch by batch, as the sink feeds them, late minutes included
        samples = [
            _sample(latency, status, T0 + timedelta(minutes=m, seconds=7), endpoint=endpoint)
            for m, endpoint, latency, status in batch
        ]
        by_samples.add_many(samples)
        for window in _closed_windows(samples, slos):
            by_windows.add_window(window)
    for minute in (62, 4323, 43_301):
        now = T0 + timedelta(minutes=minute)
        assert _state(by_windows, now, (1, 60, 4320)) == _state(by_samples, now, (1, 60, 4320))
    assert by_windows.dropped == by_samples.dropped
