"""SLO projections from request telemetry: SLIs, error budgets and burn-rate alerts.

Pure logic (no Faust, no Kafka, no database): the SLO agent feeds request samples in and
writes what comes out (minute rows, alerts) to its topics and tables. Everything here is
deterministic for a given input, so it is tested with exact values.

What is computed, and why this way:

* **SLIs from exact counts.** Every SLI is a good fraction of counted requests. An error is
  a status >= 500 or ``"error"``; availability and error-rate SLOs count non-errors as
  good. A latency SLO ("p95 < 100 ms") counts the requests faster than its threshold, so
  "p95 < 100 ms" holds exactly when that fraction is >= 95 %. No percentile estimate ever
  decides an SLO.
* **Percentiles from a mergeable sketch.** Each window also keeps a ``DDSketch`` (1 %
  relative accuracy) for the p50/p95/p99 shown on dashboards and rows.
* **Minute windows merge.** Samples are aggregated per (service, endpoint, minute); a
  window's counts add and its sketch merges, so 5 min ... 30 d windows are built from minute
  windows, and the per-service ``"*"`` window is the merge of its endpoint windows (it
  costs nothing on the hot path).
* **Exact rates.** Rates are computed as ``fractions.Fraction`` from counts and rounded
  once, half to even, to :data:`RATE_PLACES` (9) decimal places. Alert thresholds are
  compared against the exact fraction, not the rounded one.
* **Multiwindow, multi-burn-rate alerts** (Google SRE workbook, "Alerting on SLOs"): burn
  rate = (1 - SLI) / (1 - objective); page at > 14.4 over 1 h and 5 min, page at > 6 over
  6 h and 30 min, ticket at > 1 over 3 d and 6 h. See :class:`BurnRateEvaluator`.

Hot path and its cost. ``MinuteAggregator.add_many`` does, per sample, one
``datetime.timestamp()``, one dict lookup by (service, endpoint, integer minute), two or
three integer increments and one sketch key (a log), each bin then updated once per batch
(:func:`add_all`, the same result as ``DDSketch.add`` per sample);
``BurnRateEvaluator.add_many`` does a route lookup and, per matching SLO, one ring
``count`` (a slot check, two increments). Measured
on the development container (CPython 3.11, 2 cores, 200,000 pre-built samples over 4
endpoints and 60 minutes, ``time.perf_counter`` around one ``add_many`` call, best of 5)::

    MinuteAggregator.add_many    0.38-0.62 million samples/s  (1.6-2.6 us/sample, when it
                                 still called DDSketch.add per sample: ~0.46 us of it;
                                 add_all made SloSink.process ~8 % faster)
    BurnRateEvaluator.add_many   1.2-1.4 million samples/s  (0.7-0.8 us/sample, 3 SLOs per
                                 sample; ~20 % slower than with the per-minute increment
                                 inlined, the price of sharing it with add_window)
    BurnRateEvaluator.evaluate   ~2 ms for the 4 default SLOs (it scans the 4,321-minute rings)

the add paths are well above the 50,000 samples/s per worker the agent needs. This is a note, not a
test: performance targets live in bench/.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any, TypedDict

from ddsketch import DDSketch

from domain.errors import InvalidField
from domain.identifiers import utc_timestamp

__all__ = [
    "add_all",
    "ALL_ENDPOINTS",
    "BURN_RATE_RULES",
    "KINDS",
    "RATE_PLACES",
    "RELATIVE_ACCURACY",
    "WINDOWS",
    "SLO",
    "Alert",
    "BurnRateEvaluator",
    "BurnRateRule",
    "ConfigError",
    "ErrorBudget",
    "MinuteAggregator",
    "MinuteWindow",
    "RequestSample",
    "SampleError",
    "SloRow",
    "burn_rate",
    "error_budget",
    "is_error",
    "load_slos",
    "merge_windows",
    "parse_slos",
    "rollup",
    "sample_from_mapping",
    "utc_time",
]

KINDS = ("availability", "error_rate", "latency")
ALL_ENDPOINTS = "*"  # the endpoint label of a whole-service window
RELATIVE_ACCURACY = 0.01
RATE_PLACES = 9  # SLIs, burn rates and budgets are rounded half-even to this many places
_SCALE = 10**RATE_PLACES
# Window lengths in minutes; the larger ones are merges of minute windows.
WINDOWS: Mapping[str, int] = {
    "1m": 1,
    "5m": 5,
    "30m": 30,
    "1h": 60,
    "6h": 360,
    "3d": 3 * 24 * 60,
    "30d": 30 * 24 * 60,
}


def _rate(value: Fraction) -> Decimal:
    """``value`` rounded half to even to RATE_PLACES places, exactly (no float, no context)."""
    return Decimal(round(value * _SCALE)).scaleb(-RATE_PLACES)


def _show(value: object) -> str:
    return str(value) if isinstance(value, Decimal) else repr(value)


# --- samples -----------------------------------------------------------------------------


class SampleError(InvalidField):
    """A telemetry sample field is malformed; the message names the field and its value.

    >>> str(SampleError("latency_ms", -3, "must be >= 0"))
    'latency_ms=-3 must be >= 0'
    """

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(field, value, reason)

    @property
    def reason(self) -> str:
        return self.problem


@dataclass(frozen=True, slots=True)
class RequestSample:
    """One request's outcome. Built unchecked for speed; use sample_from_mapping for input.

    ``status`` is an HTTP-like status (an error when >= 500) or ``"ok"`` / ``"error"``;
    ``time`` is an aware datetime (UTC).
    """

    service: str
    endpoint: str
    latency_ms: Decimal | float
    status: int | str
    time: datetime


def add_all(sketch: DDSketch, values: Sequence[float]) -> None:
    """``sketch.add(v)`` for each of ``values`` (finite, >= 0), in order, with each bin
    updated once: DDSketch's own bookkeeping, by key, at a third of the cost.

    >>> one, many = DDSketch(0.01), DDSketch(0.01)
    >>> for v in (0.0, 3.5, 3.51, 80.0): one.add(v)
    >>> add_all(many, [0.0, 3.5, 3.51, 80.0])
    >>> [one.get_quantile_value(q) == many.get_quantile_value(q) for q in (0, 0.5, 1)]
    [True, True, True]
    """
    if not values:
        return
    key = sketch._mapping.key
    low = sketch._mapping.min_possible
    keys: dict[int, int] = {}
    zeros = 0
    total = sketch._sum
    for value in values:
        total += value
        if value > low:
            k = key(value)
            keys[k] = keys.get(k, 0) + 1
        elif value >= -low:
            zeros += 1
        else:
            raise ValueError(f"latency {value!r} is negative; a latency never is")
    store = sketch._store
    for k, count in keys.items():
        store.add(k, float(count))
    sketch._zero_count += zeros
    sketch._count += len(values)
    sketch._sum = total
    sketch._min = min(sketch._min, min(values))
    sketch._max = max(sketch._max, max(values))


def is_error(status: int | str) -> bool:
    """A status >= 500, or the string ``"error"``."""
    return status == "error" if type(status) is str else status >= 500  # type: ignore[operator]


def _text(m: Mapping[str, object], name: str) -> str:
    value = m.get(name)
    if name not in m:
        raise SampleError(name, None, "is missing")
    if not isinstance(value, str):
        raise SampleError(name, value, f"is a {type(value).__name__}, not a string")
    text = value.strip()
    if not text:
        raise SampleError(name, value, "must not be empty")
    if len(text) > 200:
        raise SampleError(name, value, "is longer than 200 characters")
    return text


def _latency(value: object) -> Decimal | float:
    number: Decimal | float
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise SampleError("latency_ms", value, "is not a number")
    if isinstance(value, float):
        number = value
    else:
        try:
            number = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise SampleError("latency_ms", value, "is not a number") from None
    if not (math.isfinite(number) if type(number) is float else number.is_finite()):  # type: ignore[union-attr]
        raise SampleError("latency_ms", value, "must be finite")  # a Decimal sNaN has no float
    if number < 0:
        raise SampleError("latency_ms", value, "must be >= 0")
    return number


def _status(value: object) -> int | str:
    if value in ("ok", "error"):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
        return value
    raise SampleError("status", value, "must be an HTTP status 100-599, 'ok' or 'error'")


def _plain_sample(m: dict[str, Any]) -> RequestSample | None:
    """The sample of the usual message (string names, a float latency, an integer status,
    an ISO 8601 time with an offset), exactly as the full checks make it; None for anything
    else, which the full checks then accept or name."""
    service, endpoint, latency, status, moment = (
        m.get("service"), m.get("endpoint"), m.get("latency_ms"), m.get("status"), m.get("time")
    )  # fmt: skip
    if not (
        type(service) is str
        and type(endpoint) is str
        and type(latency) is float
        and type(status) is int
        and type(moment) is str
        and 0.0 <= latency < math.inf
        and 100 <= status <= 599
    ):
        return None
    service, endpoint = service.strip(), endpoint.strip()
    if not (0 < len(service) <= 200 and 0 < len(endpoint) <= 200):
        return None
    try:
        parsed = datetime.fromisoformat(moment.strip())
        if parsed.utcoffset() is None:
            return None
        return RequestSample(service, endpoint, latency, status, parsed.astimezone(UTC))
    except (ValueError, OverflowError):
        return None


def utc_time(value: object) -> datetime:
    """A sample's ``time``: an aware datetime or ISO 8601 string with an offset, in UTC;
    SampleError naming ``time`` otherwise (the domain's rule, ``utc_timestamp``)."""
    return utc_timestamp(value, "time", error=SampleError, kinds="a timestamp")


def sample_from_mapping(m: object) -> RequestSample:
    """A checked RequestSample from a decoded message, or SampleError naming field and value.

    ``latency_ms`` may be a number or a numeric string (kept as Decimal; a float stays a
    float); ``time`` an aware datetime or an ISO 8601 string with an offset (made UTC).
    """
    if type(m) is dict:  # the hot path: what services send, checked in one go
        sample = _plain_sample(m)
        if sample is not None:
            return sample
    return _checked_sample(m)


def _checked_sample(m: object) -> RequestSample:
    """:func:`sample_from_mapping`, field by field."""
    if not isinstance(m, Mapping):
        raise SampleError("sample", m, f"is a {type(m).__name__}, not a mapping")
    for name in ("latency_ms", "status", "time"):
        if name not in m:
            raise SampleError(name, None, "is missing")
    return RequestSample(
        service=_text(m, "service"),
        endpoint=_text(m, "endpoint"),
        latency_ms=_latency(m["latency_ms"]),
        status=_status(m["status"]),
        time=utc_time(m["time"]),
    )


# --- SLO definitions ---------------------------------------------------------------------


class ConfigError(ValueError):
    """An SLO definition is invalid; the message names the SLO, the field and the value.

    >>> str(ConfigError("kind must be one of ...", slo="x", field="kind", value="y"))
    "slo 'x': kind='y' kind must be one of ..."
    """

    def __init__(
        self,
        reason: str,
        *,
        slo: str | None = None,
        field: str | None = None,
        value: object = None,
    ) -> None:
        self.slo = slo
        self.field = field
        self.value = value
        self.reason = reason
        where = f"slo {slo!r}: " if slo is not None else ""
        what = f"{field}={_show(value)} " if field is not None else ""
        super().__init__(f"{where}{what}{reason}")


@dataclass(frozen=True)
class SLO:
    """One service level objective. ``objective`` is the good fraction in percent.

    Checked on construction: a bad field raises ConfigError naming the SLO and the field.
    """

    name: str
    service: str
    kind: str
    objective: Decimal
    threshold_ms: Decimal | None = None
    endpoint: str | None = None
    window_days: int = 30
    description: str = ""

    def __post_init__(self) -> None:
        name = self.name

        def fail(field: str, value: object, reason: str) -> ConfigError:
            return ConfigError(reason, slo=name, field=field, value=value)

        for attr in ("name", "service"):
            value = getattr(self, attr)
            if not isinstance(value, str) or not value.strip():
                raise fail(attr, value, "must be a non-empty string")
        if self.endpoint is not None and (
            not isinstance(self.endpoint, str) or not self.endpoint.strip()
        ):
            raise fail("endpoint", self.endpoint, "must be a non-empty string when given")
        if self.endpoint == ALL_ENDPOINTS:
            raise fail("endpoint", self.endpoint, "is reserved; omit endpoint for all")
        if self.kind not in KINDS:
            raise fail("kind", self.kind, "must be one of " + ", ".join(KINDS))
        objective = self.objective
        if isinstance(objective, bool) or not isinstance(objective, Decimal | int):
            raise fail("objective", objective, "must be a number (percent)")
        if not isinstance(objective, Decimal):
            object.__setattr__(self, "objective", Decimal(objective))
        if not Decimal(0) < self.objective < Decimal(100):
            raise fail("objective", objective, "must be between 0 and 100 (exclusive)")
        threshold = self.threshold_ms
        if self.kind == "latency":
            if threshold is None:
                raise fail("threshold_ms", threshold, "is required for a latency SLO")
            if isinstance(threshold, bool) or not isinstance(threshold, Decimal | int):
                raise fail("threshold_ms", threshold, "must be a number (milliseconds)")
            if not isinstance(threshold, Decimal):
                object.__setattr__(self, "threshold_ms", Decimal(threshold))
            if not Decimal(0) < Decimal(threshold) < Decimal(3_600_000):
                raise fail("threshold_ms", threshold, "must be > 0 and under one hour")
        elif threshold is not None:
            raise fail("threshold_ms", threshold, "applies only to latency SLOs")
        days = self.window_days
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 366:
            raise fail("window_days", days, "must be a whole number of days, 1 to 366")

    @property
    def target(self) -> Fraction:
        """The objective as an exact fraction, e.g. 99.95 -> 1999/2000."""
        return Fraction(self.objective) / 100

    @property
    def budget(self) -> Fraction:
        """The error budget, 1 - objective, as an exact fraction."""
        return 1 - self.target

    def covers(self, service: str, endpoint: str) -> bool:
        """Does this SLO count requests to (service, endpoint)? ``"*"``: the whole service."""
        if service != self.service:
            return False
        return self.endpoint is None or self.endpoint == endpoint


_SLO_FIELDS = (
    "name",
    "service",
    "endpoint",
    "kind",
    "objective",
    "threshold_ms",
    "window_days",
    "description",
)


def parse_slos(document: Mapping[str, Any]) -> tuple[SLO, ...]:
    """SLOs from a decoded TOML document ``{"slo": [{...}, ...]}``, or ConfigError."""
    extra = sorted(set(document) - {"slo"})
    if extra:
        raise ConfigError(
            "is not a known top-level key (only [[slo]] tables)",
            field=extra[0],
            value=document[extra[0]],
        )
    tables = document.get("slo")
    if not isinstance(tables, list) or not tables:
        raise ConfigError("the file defines no [[slo]] tables")
    slos: list[SLO] = []
    seen: set[str] = set()
    for index, table in enumerate(tables, start=1):
        if not isinstance(table, Mapping):
            raise ConfigError("is not a table", slo=f"#{index}")
        raw_name = table.get("name")
        label = raw_name if isinstance(raw_name, str) and raw_name.strip() else f"#{index}"
        for key in table:
            if key not in _SLO_FIELDS:
                known = ", ".join(_SLO_FIELDS)
                raise ConfigError(
                    f"is not a known field (known: {known})", slo=label, field=key, value=table[key]
                )
        for key in ("name", "service", "kind", "objective"):
            if key not in table:
                raise ConfigError("is missing", slo=label, field=key)
        slo = SLO(**dict(table))
        if slo.name in seen:
            raise ConfigError("is defined twice", slo=slo.name, field="name", value=slo.name)
        seen.add(slo.name)
        slos.append(slo)
    return tuple(slos)


def load_slos(path: str | Path | None = None) -> tuple[SLO, ...]:
    """The SLOs of ``path``, or of the packaged ``streams/slo.toml`` when None."""
    if path is None:
        text = resources.files("streams").joinpath("slo.toml").read_text(encoding="utf-8")
        where = "streams/slo.toml"
    else:
        text = Path(path).read_text(encoding="utf-8")
        where = str(path)
    try:
        document = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{where} is not valid TOML: {error}") from None
    return parse_slos(document)


# --- rates and budgets ------------------------------------------------------------------


def _bad_fraction(total: int, bad: int) -> Fraction:
    return Fraction(bad, total) if total else Fraction(0)


def burn_rate(slo: SLO, total: int, bad: int) -> Decimal:
    """(1 - SLI) / (1 - objective), rounded to RATE_PLACES; 0 when nothing was counted."""
    return _rate(_bad_fraction(total, bad) / slo.budget)


@dataclass(frozen=True)
class ErrorBudget:
    """An SLO's error budget over a window: ``consumed`` may exceed 1 (budget overspent)."""

    slo: str
    total: int
    bad: int
    sli: Decimal | None  # None when no request was counted
    budget: Decimal  # 1 - objective
    consumed: Decimal  # (1 - SLI) / budget
    remaining: Decimal  # 1 - consumed (negative when overspent)


def error_budget(slo: SLO, total: int, bad: int) -> ErrorBudget:
    """The budget of ``slo`` given the counts of its window (normally ``window_days``)."""
    consumed = _bad_fraction(total, bad) / slo.budget
    return ErrorBudget(
        slo=slo.name,
        total=total,
        bad=bad,
        sli=_rate(1 - Fraction(bad, total)) if total else None,
        budget=_rate(slo.budget),
        consumed=_rate(consumed),
        remaining=_rate(1 - consumed),
    )


# --- windows -----------------------------------------------------------------------------


class SloRow(TypedDict):
    """One window as a row of the SLO time-series table."""

    service: str
    endpoint: str  # "*" for the whole service
    bucket_start: datetime
    minutes: int
    total: int
    good: int
    errors: int
    p50_ms: Decimal | None
    p95_ms: Decimal | None
    p99_ms: Decimal | None
    slo_good: dict[str, int]  # per SLO in scope: the requests it counts as good


def _minute_start(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, UTC)


class MinuteWindow:
    """Counts and a latency sketch of one service's (endpoint's) requests over whole minutes.

    A window starts as one minute bucket; ``merge`` widens it to ``[start, end)``. It counts
    ``total``, ``errors`` and, per latency threshold of the service's SLOs (ascending), the
    requests strictly faster than it; ``sketch`` is a DDSketch of the latencies.
    """

    __slots__ = (
        "_threshold_index",
        "below",
        "end",
        "endpoint",
        "errors",
        "service",
        "sketch",
        "slos",
        "start",
        "thresholds",
        "total",
    )

    def __init__(self, service: str, endpoint: str, minute: int, slos: Sequence[SLO] = ()) -> None:
        self.service = service
        self.endpoint = endpoint
        self.start = minute  # minutes since the epoch, inclusive
        self.end = minute + 1  # exclusive
        self.slos = tuple(s for s in slos if s.service == service)
        thresholds = sorted({s.threshold_ms for s in self.slos if s.threshold_ms is not None})
        self._threshold_index = {t: i for i, t in enumerate(thresholds)}
        self.thresholds = tuple(float(t) for t in thresholds)
        self.total = 0
        self.errors = 0
        self.below = [0] * len(thresholds)
        self.sketch = DDSketch(RELATIVE_ACCURACY)

    @classmethod
    def from_counts(
        cls,
        service: str,
        endpoint: str,
        minute: int,
        slos: Sequence[SLO],
        *,
        total: int,
        errors: int,
        slo_good: Mapping[str, int],
    ) -> MinuteWindow:
        """A window rebuilt from stored counts (its sketch stays empty).

        ``slo_good`` is :meth:`to_row`'s: the good count per SLO name. A latency SLO
        missing from it is left out of the window (its threshold was not counted).

        >>> w = MinuteWindow.from_counts("api", "/a", 0, [LATENCY], total=3, errors=1,
        ...                              slo_good={"api-latency": 2})  # doctest: +SKIP
        """
        kept = [s for s in slos if s.threshold_ms is None or s.name in slo_good]
        window = cls(service, endpoint, minute, kept)
        window.total = total
        window.errors = errors
        for slo in window.slos:
            if slo.threshold_ms is not None and window.applies(slo):
                window.below[window._threshold_index[slo.threshold_ms]] = slo_good[slo.name]
        return window

    # The aggregators inline this body; keep them in step.
    def add(self, sample: RequestSample) -> None:
        """Count one sample; it must belong to this window's service, endpoint and minutes."""
        minute = int(sample.time.timestamp() // 60)
        if sample.service != self.service or not self.start <= minute < self.end:
            raise ValueError(
                f"sample {sample.service}/{sample.endpoint} at {sample.time.isoformat()} is "
                f"outside window {self.service}/{self.endpoint} from {self.bucket_start}"
            )
        if self.endpoint not in (sample.endpoint, ALL_ENDPOINTS):
            raise ValueError(f"sample endpoint {sample.endpoint} is not {self.endpoint}")
        latency = float(sample.latency_ms)
        self.total += 1
        if is_error(sample.status):
            self.errors += 1
        below = self.below
        for i, threshold in enumerate(self.thresholds):
            if latency < threshold:
                below[i] += 1
        self.sketch.add(latency)

    def merge(self, other: MinuteWindow) -> MinuteWindow:
        """Add ``other``'s counts and sketch into this window (widening it); returns self.

        Allowed for the same service and thresholds, and the same endpoint, or into a
        ``"*"`` window.
        """
        if other.service != self.service or other.thresholds != self.thresholds:
            raise ValueError(f"cannot merge {other.service} windows into {self.service} ones")
        if self.endpoint not in (other.endpoint, ALL_ENDPOINTS):
            raise ValueError(f"cannot merge endpoint {other.endpoint} into {self.endpoint}")
        if other.total:
            self.total += other.total
            self.errors += other.errors
            self.below = [a + b for a, b in zip(self.below, other.below, strict=True)]
            self.sketch.merge(other.sketch)
        self.start = min(self.start, other.start)
        self.end = max(self.end, other.end)
        return self

    def copy(self) -> MinuteWindow:
        twin = MinuteWindow(self.service, self.endpoint, self.start, self.slos)
        twin.end = self.end
        return twin.merge(self)

    @property
    def good(self) -> int:
        return self.total - self.errors

    @property
    def bucket_start(self) -> datetime:
        return _minute_start(self.start)

    @property
    def minutes(self) -> int:
        return self.end - self.start

    def applies(self, slo: SLO) -> bool:
        """Is this window in the SLO's scope (its service; its endpoint, or all of them)?"""
        if slo.service != self.service:
            return False
        return slo.endpoint is None or slo.endpoint == self.endpoint

    def counts(self, slo: SLO) -> bool:
        """Does this window count ``slo``'s good requests (its scope, and its threshold)?"""
        return self.applies(slo) and (
            slo.threshold_ms is None or slo.threshold_ms in self._threshold_index
        )

    def good_for(self, slo: SLO) -> int:
        """The requests this window counts as good for ``slo``."""
        if not self.applies(slo) or (
            slo.threshold_ms is not None and slo.threshold_ms not in self._threshold_index
        ):
            raise ValueError(f"SLO {slo.name} does not apply to {self.service}/{self.endpoint}")
        if slo.threshold_ms is None:
            return self.good
        return self.below[self._threshold_index[slo.threshold_ms]]

    def sli(self, slo: SLO) -> Decimal | None:
        """The good fraction for ``slo`` (RATE_PLACES places), None when no request."""
        good = self.good_for(slo)
        return _rate(Fraction(good, self.total)) if self.total else None

    def burn_rate(self, slo: SLO) -> Decimal:
        return burn_rate(slo, self.total, self.total - self.good_for(slo))

    def error_budget(self, slo: SLO) -> ErrorBudget:
        return error_budget(slo, self.total, self.total - self.good_for(slo))

    def percentile(self, q: float) -> float | None:
        """The latency quantile ``q`` (0 to 1, e.g. 0.95) within 1 % relative accuracy."""
        if not 0 <= q <= 1:
            raise ValueError(f"q={q!r} must be between 0 and 1")
        if not self.total:
            return None
        value: float | None = self.sketch.get_quantile_value(q)
        return value

    def to_row(self) -> SloRow:
        """A row for the SLO time-series table (percentiles rounded to 0.001 ms)."""

        def ms(q: float) -> Decimal | None:
            value = self.percentile(q)
            return None if value is None else Decimal(repr(value)).quantize(Decimal("0.001"))

        return {
            "service": self.service,
            "endpoint": self.endpoint,
            "bucket_start": self.bucket_start,
            "minutes": self.minutes,
            "total": self.total,
            "good": self.good,
            "errors": self.errors,
            "p50_ms": ms(0.50),
            "p95_ms": ms(0.95),
            "p99_ms": ms(0.99),
            "slo_good": {s.name: self.good_for(s) for s in self.slos if self.applies(s)},
        }

    def __repr__(self) -> str:
        return (
            f"MinuteWindow({self.service}/{self.endpoint} {self.bucket_start.isoformat()} "
            f"+{self.minutes}m total={self.total} errors={self.errors} below={self.below})"
        )


def merge_windows(windows: Iterable[MinuteWindow], endpoint: str | None = None) -> MinuteWindow:
    """One window merging ``windows`` (one service); ``endpoint`` relabels it, e.g. ``"*"``."""
    merged: MinuteWindow | None = None
    for window in windows:
        if merged is None:
            label = window.endpoint if endpoint is None else endpoint
            merged = MinuteWindow(window.service, label, window.start, window.slos)
            merged.end = window.end
        merged.merge(window)
    if merged is None:
        raise ValueError("no windows to merge")
    return merged


def rollup(windows: Iterable[MinuteWindow], minutes: int) -> list[MinuteWindow]:
    """Windows of ``minutes`` (aligned to the epoch) merged from smaller ones, sorted."""
    if minutes < 1:
        raise ValueError(f"minutes={minutes!r} must be >= 1")
    groups: dict[tuple[str, str, int], MinuteWindow] = {}
    for window in windows:
        bucket = window.start // minutes * minutes
        key = (window.service, window.endpoint, bucket)
        group = groups.get(key)
        if group is None:
            group = MinuteWindow(window.service, window.endpoint, bucket, window.slos)
            groups[key] = group
            group.end = bucket + minutes
        group.merge(window)
    return [groups[key] for key in sorted(groups, key=lambda k: (k[2], k[0], k[1]))]


class MinuteAggregator:
    """Per (service, endpoint, minute) windows from a stream of samples.

    ``close(before)`` hands out the finished minutes, each endpoint's window plus the
    service's ``"*"`` window merged from them.
    """

    def __init__(self, slos: Sequence[SLO] = ()) -> None:
        self.slos = tuple(slos)
        self._windows: dict[tuple[str, str, int], MinuteWindow] = {}

    def __len__(self) -> int:
        return len(self._windows)

    def add(self, sample: RequestSample) -> None:
        self.add_many((sample,))

    def add_many(self, samples: Iterable[RequestSample]) -> None:
        """The hot path: see the module docstring for its cost."""
        windows = self._windows
        latencies: dict[tuple[str, str, int], list[float]] = {}
        for sample in samples:
            minute = int(sample.time.timestamp() // 60)
            key = (sample.service, sample.endpoint, minute)
            window = windows.get(key)
            if window is None:
                window = windows[key] = MinuteWindow(key[0], key[1], minute, self.slos)
            latency = sample.latency_ms
            if type(latency) is not float:
                latency = float(latency)
            status = sample.status
            window.total += 1
            if status == "error" if type(status) is str else status >= 500:  # type: ignore[operator]
                window.errors += 1
            if window.thresholds:
                below = window.below
                for i, threshold in enumerate(window.thresholds):
                    if latency < threshold:
                        below[i] += 1
            bucket = latencies.get(key)
            if bucket is None:
                bucket = latencies[key] = []
            bucket.append(latency)
        for key, values in latencies.items():
            add_all(windows[key].sketch, values)

    def close(self, before: datetime) -> list[MinuteWindow]:
        """Remove and return the windows of minutes that ended by ``before``.

        Sorted by (minute, service, endpoint), each service's ``"*"`` window first.
        """
        limit = math.floor(before.timestamp() / 60)
        done = sorted(k for k in self._windows if k[2] < limit)
        out: list[MinuteWindow] = []
        by_service: dict[tuple[int, str], list[MinuteWindow]] = {}
        for key in done:
            window = self._windows.pop(key)
            by_service.setdefault((key[2], key[0]), []).append(window)
        for service_key in sorted(by_service):
            group = by_service[service_key]
            out.append(merge_windows(group, ALL_ENDPOINTS))
            out.extend(group)
        return out


# --- burn-rate alerts --------------------------------------------------------------------


@dataclass(frozen=True)
class BurnRateRule:
    """Alert when the burn rate exceeds ``threshold`` over both windows (minutes)."""

    name: str
    severity: str  # "page" | "ticket"
    long_minutes: int
    short_minutes: int
    threshold: Decimal


BURN_RATE_RULES = (
    BurnRateRule("page-1h", "page", 60, 5, Decimal("14.4")),
    BurnRateRule("page-6h", "page", 360, 30, Decimal("6")),
    BurnRateRule("ticket-3d", "ticket", 3 * 24 * 60, 360, Decimal("1")),
)


@dataclass(frozen=True)
class Alert:
    """A burn-rate rule that started to hold for an SLO (see BurnRateEvaluator)."""

    slo: str
    service: str
    severity: str
    rule: str
    long_window: timedelta
    short_window: timedelta
    burn_rate_long: Decimal
    burn_rate_short: Decimal
    threshold: Decimal
    sli_long: Decimal
    sli_short: Decimal
    window_end: datetime
    error_budget_remaining: Decimal


_RING_MINUTES = 3 * 24 * 60 + 1  # three days of complete minutes plus the current one
_HOURS = 30 * 24 + 1


class _Ring:
    """Per-minute (total, bad) counts of one SLO; minutes leaving it fold into hours."""

    __slots__ = ("bad", "dropped", "hour_bad", "hour_stamp", "hour_total", "stamp", "total")

    def __init__(self) -> None:
        self.stamp = [-1] * _RING_MINUTES
        self.total = [0] * _RING_MINUTES
        self.bad = [0] * _RING_MINUTES
        self.hour_stamp = [-1] * _HOURS
        self.hour_total = [0] * _HOURS
        self.hour_bad = [0] * _HOURS
        self.dropped = 0  # samples older than the hour ring (over 30 days late)

    def open(self, slot: int, minute: int) -> bool:
        """Make ``slot`` hold ``minute``; False when it holds a newer one (a late sample)."""
        held = self.stamp[slot]
        if held > minute:
            return False
        if held >= 0 and self.total[slot]:
            self.fold(held, self.total[slot], self.bad[slot])
        self.stamp[slot] = minute
        self.total[slot] = 0
        self.bad[slot] = 0
        return True

    def count(self, minute: int, total: int, bad: int) -> None:
        """Add (total, bad) requests of ``minute``: to its slot, or, when the slot already
        holds a newer minute (late data), straight to the hour ring (the budget sees it)."""
        slot = minute % _RING_MINUTES
        if self.stamp[slot] != minute and not self.open(slot, minute):
            self.fold(minute, total, bad)
            return
        self.total[slot] += total
        self.bad[slot] += bad

    def fold(self, minute: int, total: int, bad: int) -> None:
        hour = minute // 60
        slot = hour % _HOURS
        held = self.hour_stamp[slot]
        if held > hour:
            self.dropped += total
            return
        if held < hour:
            self.hour_stamp[slot] = hour
            self.hour_total[slot] = 0
            self.hour_bad[slot] = 0
        self.hour_total[slot] += total
        self.hour_bad[slot] += bad


class BurnRateEvaluator:
    """Multiwindow, multi-burn-rate alerts for a set of SLOs.

    Per SLO it keeps a ring of per-minute (total, bad) counts covering three days plus the
    current minute; minutes pushed out of it are folded into an hourly ring covering 30
    days, for the error budget. ``evaluate(now)`` looks at complete minutes only: a window
    of L minutes is ``[m - L, m)`` where ``m`` is the minute containing ``now``, and
    ``window_end`` is the start of ``m``. A window with no request has burn rate 0. Call
    ``evaluate`` with ``now`` at or after the newest sample (as a live agent does).

    The error budget in an alert covers ``[h - 30 d, m)``, ``h`` the start of the hour
    holding ``m``: 30 days of whole hours plus the current hour's complete minutes.

    De-duplication: an (SLO, rule) pair fires one Alert when its condition (burn rate over
    the threshold on both windows) starts to hold, and no other while it keeps holding. It
    re-arms at the first evaluation where the condition no longer holds (in practice when
    the short window drops under the threshold, minutes after the cause is fixed); the next
    breach fires again. Rules are independent: a page and a ticket may fire together.
    """

    def __init__(
        self, slos: Sequence[SLO], rules: Sequence[BurnRateRule] = BURN_RATE_RULES
    ) -> None:
        for rule in rules:
            if not 0 < rule.short_minutes < rule.long_minutes <= _RING_MINUTES - 1:
                raise ValueError(f"rule {rule.name}: windows must fit in three days")
        self.slos = tuple(slos)
        self.rules = tuple(rules)
        self._rings = {slo.name: _Ring() for slo in self.slos}
        # (service, endpoint) -> ((ring, latency threshold or None), ...)
        self._routes: dict[tuple[str, str], tuple[tuple[_Ring, float | None], ...]] = {}
        self._firing: set[tuple[str, str]] = set()

    @property
    def firing(self) -> frozenset[tuple[str, str]]:
        """The (SLO name, rule name) pairs that fired and have not re-armed yet."""
        return frozenset(self._firing)

    @property
    def dropped(self) -> int:
        """Samples ignored because they were over 30 days older than newer ones."""
        return sum(ring.dropped for ring in self._rings.values())

    def _route(self, service: str, endpoint: str) -> tuple[tuple[_Ring, float | None], ...]:
        route = tuple(
            (self._rings[s.name], None if s.threshold_ms is None else float(s.threshold_ms))
            for s in self.slos
            if s.covers(service, endpoint)
        )
        self._routes[(service, endpoint)] = route
        return route

    def add(self, sample: RequestSample) -> None:
        self.add_many((sample,))

    def add_many(self, samples: Iterable[RequestSample]) -> None:
        """The hot path: count each sample as good or bad for every SLO covering it."""
        routes = self._routes
        for sample in samples:
            route = routes.get((sample.service, sample.endpoint))
            if route is None:
                route = self._route(sample.service, sample.endpoint)
            if not route:
                continue
            minute = int(sample.time.timestamp() // 60)
            status = sample.status
            error = status == "error" if type(status) is str else status >= 500  # type: ignore[operator]
            for ring, threshold in route:
                bad = error if threshold is None else float(sample.latency_ms) >= threshold
                ring.count(minute, 1, 1 if bad else 0)

    def add_window(self, window: MinuteWindow) -> None:
        """Count one endpoint's minute window for every SLO covering it, as ``add_many``
        counts its samples (the same ring logic, late minutes included).

        ``"*"`` windows are ignored: they merge the endpoint windows, which count already.
        A latency SLO whose threshold the window does not count (a window built before
        the SLO existed) is skipped for it.

        >>> evaluator.add_window(aggregator.close(now)[1])  # doctest: +SKIP
        """
        if window.endpoint == ALL_ENDPOINTS:
            return
        if window.minutes != 1:
            raise ValueError(f"{window!r} is not a one-minute window; add its minutes one by one")
        if not window.total:
            return
        for slo in self.slos:
            if not slo.covers(window.service, window.endpoint) or not window.counts(slo):
                continue
            bad = window.total - window.good_for(slo)
            self._rings[slo.name].count(window.start, window.total, bad)

    def _by_age(self, ring: _Ring, now_minute: int) -> tuple[list[int], list[int]]:
        """Counts by age in minutes (index 1 = the last complete minute)."""
        size = _RING_MINUTES
        totals = [0] * size
        bads = [0] * size
        for slot, stamp in enumerate(ring.stamp):
            age = now_minute - stamp
            if 0 < age < size and stamp >= 0:
                totals[age] += ring.total[slot]
                bads[age] += ring.bad[slot]
        return totals, bads

    def _budget(self, slo: SLO, ring: _Ring, now_minute: int) -> ErrorBudget:
        start = now_minute // 60 * 60 - slo.window_days * 24 * 60
        total = bad = 0
        for slot, stamp in enumerate(ring.stamp):
            if stamp >= 0 and start <= stamp < now_minute:
                total += ring.total[slot]
                bad += ring.bad[slot]
        for slot, hour in enumerate(ring.hour_stamp):
            if hour >= 0 and start <= hour * 60 < now_minute:
                total += ring.hour_total[slot]
                bad += ring.hour_bad[slot]
        return error_budget(slo, total, bad)

    def error_budget(self, slo_name: str, now: datetime) -> ErrorBudget:
        """The SLO's error budget over its window_days up to the minute holding ``now``."""
        slo = self._slo(slo_name)
        return self._budget(slo, self._rings[slo.name], _minute_of(now))

    def burn_rate(self, slo_name: str, minutes: int, now: datetime) -> Decimal:
        """The burn rate over the last ``minutes`` complete minutes before ``now``."""
        if not 0 < minutes < _RING_MINUTES:
            raise ValueError(f"minutes={minutes!r} must be between 1 and three days")
        slo = self._slo(slo_name)
        totals, bads = self._by_age(self._rings[slo.name], _minute_of(now))
        return burn_rate(slo, sum(totals[1 : minutes + 1]), sum(bads[1 : minutes + 1]))

    def _slo(self, name: str) -> SLO:
        for slo in self.slos:
            if slo.name == name:
                return slo
        raise KeyError(f"no SLO named {name!r}")

    def evaluate(self, now: datetime) -> list[Alert]:
        """Alerts that start to hold at ``now`` (de-duplicated, see the class docstring)."""
        now_minute = _minute_of(now)
        window_end = _minute_start(now_minute)
        alerts: list[Alert] = []
        for slo in self.slos:
            ring = self._rings[slo.name]
            totals, bads = self._by_age(ring, now_minute)
            budget: ErrorBudget | None = None
            for rule in self.rules:
                key = (slo.name, rule.name)
                long_total = sum(totals[1 : rule.long_minutes + 1])
                long_bad = sum(bads[1 : rule.long_minutes + 1])
                short_total = sum(totals[1 : rule.short_minutes + 1])
                short_bad = sum(bads[1 : rule.short_minutes + 1])
                limit = Fraction(rule.threshold) * slo.budget  # burn > t <=> bad share > t*b
                hot = (
                    long_total > 0
                    and short_total > 0
                    and Fraction(long_bad, long_total) > limit
                    and Fraction(short_bad, short_total) > limit
                )
                if not hot:
                    self._firing.discard(key)
                    continue
                if key in self._firing:
                    continue
                self._firing.add(key)
                if budget is None:
                    budget = self._budget(slo, ring, now_minute)
                alerts.append(
                    Alert(
                        slo=slo.name,
                        service=slo.service,
                        severity=rule.severity,
                        rule=rule.name,
                        long_window=timedelta(minutes=rule.long_minutes),
                        short_window=timedelta(minutes=rule.short_minutes),
                        burn_rate_long=burn_rate(slo, long_total, long_bad),
                        burn_rate_short=burn_rate(slo, short_total, short_bad),
                        threshold=rule.threshold,
                        sli_long=_rate(1 - Fraction(long_bad, long_total)),
                        sli_short=_rate(1 - Fraction(short_bad, short_total)),
                        window_end=window_end,
                        error_budget_remaining=budget.remaining,
                    )
                )
        return alerts


def _minute_of(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"now={moment.isoformat()} has no time zone; give UTC")
    return math.floor(moment.timestamp() / 60)
