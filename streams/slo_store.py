"""The SLO worker's synchronous core: request telemetry -> ``slo_windows``, exactly once,
and burn-rate alerts recorded in the ledger as SLO breaches.

One batch is the records of one partition of ``telemetry.requests``
(:meth:`SloSink.process`):

1. each record's value is decoded as a JSON object into a
   :class:`~streams.slo.RequestSample`; a bad one becomes a
   :class:`~streams.messages.Rejection` naming the field at fault (``"message"`` when the
   whole value is), which the caller sends to ``telemetry.dlq``;
2. records at or below the partition's tracked offset (``ledger_tracking`` row
   ``slo:telemetry.requests:<partition>``) were counted before a redelivery: skipped;
3. the others are aggregated per (service, endpoint, minute), plus the service's ``"*"``
   window;
4. in one transaction the tracked offset moves to the batch's last (compare and set: when
   it moved meanwhile, another worker owns the partition, :class:`SloPartitionConflictError`,
   nothing is written) and every window is merged into its ``slo_windows`` row: counts
   add, latency bins add, percentiles are recomputed from the merged bins;
5. after the commit the endpoint windows are counted by the
   :class:`~streams.slo.BurnRateEvaluator`, which is evaluated, and each alert is recorded
   with ``AuditTrail.record_slo_breach``. Its breach id is (SLO, rule, window end), so an
   alert recorded twice (a restart, a redelivered batch) is in the ledger once.

Clock. Alerts are evaluated in event time: ``now`` is the newest sample time seen in the
batch (skipped records included, so a redelivered batch evaluates as it did the first
time), and never goes back across batches. A minute counts as complete once a newer sample
was seen; a minute that a lagging partition fills later is counted from then on.

Late samples. A sample for a minute already in ``slo_windows`` merges into that row (its
counts add), however late, so nothing is dropped. The evaluator counts it too while its
minute is in its three-day ring; an older one goes to its hourly ring (the 30-day error
budget), and one over 30 days late is dropped there (``BurnRateEvaluator.dropped``) but is
still in the row.

Restart. :meth:`SloSink.restore` rebuilds the evaluator's counts from the endpoint rows of
the last 30 days, not which alerts were firing: a rule still hot fires again at the first
evaluation. For a redelivered batch that is the same window end, the same breach id, and
the ledger keeps one breach; for a later batch it is a new breach at the later window end.

Latency bins. A row's ``latency_bins`` is its DDSketch (1 % relative accuracy) as
``{"zero": n, "bins": {"<key>": count}}``, ``key`` the sketch mapping's integer bin key;
decoding adds ``mapping.value(key)`` with weight ``count``, which lands in the same bin, so
quantiles survive the round trip exactly and two rows merge by adding counts.

Concurrency. Workers on different partitions may merge into the same rows: each batch's
transaction also locks the ``ledger_tracking`` row ``slo:slo_windows`` (it holds no
position), so merges into ``slo_windows`` are serialised and no update is lost (SQLite
serialises writers anyway). Dead
letters are returned, not sent: a crash after the commit and before the caller sends them
loses that batch's dead letters (its samples are counted exactly once).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, cast

import orjson
from ddsketch import DDSketch
from ddsketch.store import DenseStore
from eventsourcing.persistence import IntegrityError

from domain.application import AuditTrail
from domain.reliability import SloBreach
from ledger.errors import DuplicateSourceError
from ledger.factory import application_env, open_store
from ledger.settings import Settings
from ledger.sqlfiles import queries
from ledger.views import Column, Kind, Row, TableSpec

from .messages import RawMessage, Rejection
from .slo import (
    ALL_ENDPOINTS,
    RELATIVE_ACCURACY,
    SLO,
    Alert,
    BurnRateEvaluator,
    MinuteAggregator,
    MinuteWindow,
    RequestSample,
    SampleError,
    load_slos,
    sample_from_mapping,
)
from .topics import TELEMETRY_REQUESTS

__all__ = [
    "PERCENTILES",
    "RESTORE_DAYS",
    "SLO_WINDOWS",
    "WINDOWS_LOCK",
    "SloBatch",
    "SloPartitionConflictError",
    "SloSink",
    "SloStoreError",
    "add_bins",
    "alert_json",
    "breach_id",
    "decode_bins",
    "decode_sample",
    "encode_bins",
    "minute_key",
    "percentile_ms",
    "tracking_name",
    "window_row",
]

# A ledger_tracking row locked by every batch's transaction; it holds no position (0).
WINDOWS_LOCK = "slo:slo_windows"
PERCENTILES = (0.50, 0.95, 0.99)  # p50_ms, p95_ms, p99_ms
RESTORE_DAYS = 30  # the evaluator's longest memory: its hourly ring

_MS = Decimal("0.001")
_THE_END = datetime.max.replace(tzinfo=UTC)

SLO_WINDOWS = TableSpec(
    "slo_windows",
    (
        Column("service", Kind.TEXT),
        Column("endpoint", Kind.TEXT),
        Column("minute", Kind.TEXT),
        Column("bucket_start", Kind.TIME),
        Column("total", Kind.INT),
        Column("errors", Kind.INT),
        Column("slo_good", Kind.JSON),
        Column("latency_bins", Kind.JSON),
        Column("p50_ms", Kind.DECIMAL),
        Column("p95_ms", Kind.DECIMAL),
        Column("p99_ms", Kind.DECIMAL),
    ),
    ("service", "endpoint", "minute"),
)
# The columns restore() needs: the latency bins of 30 days of rows are left in the table.
_COUNTS = TableSpec("slo_windows", SLO_WINDOWS.columns[:7], SLO_WINDOWS.key)  # to slo_good


class SloStoreError(RuntimeError):
    """Root of what the SLO sink raises on purpose."""


class SloPartitionConflictError(SloStoreError):
    """The partition's tracked offset moved during a batch: another SLO worker owns it."""


def tracking_name(partition: int) -> str:
    """The ``ledger_tracking`` row of a partition: ``slo:telemetry.requests:<partition>``."""
    return f"slo:{TELEMETRY_REQUESTS}:{partition}"


# --- samples -----------------------------------------------------------------------------


def decode_sample(value: bytes) -> RequestSample:
    """A checked sample from a record's value (a JSON object), or SampleError.

    >>> decode_sample(b"[1]")
    Traceback (most recent call last):
    ...
    streams.slo.SampleError: message=b'[1]' is a list, not a JSON object
    """
    try:
        # UTF-8 JSON (RFC 8259: no NaN), by orjson: ~0.6 us a sample, json.loads ~3.
        document = orjson.loads(value)
    except orjson.JSONDecodeError as exc:  # not UTF-8 or JSON, nested over 1,024 deep
        raise SampleError("message", value, f"is not JSON: {exc}") from None
    if not isinstance(document, dict):
        kind = type(document).__name__
        raise SampleError("message", value, f"is a {kind}, not a JSON object")
    return sample_from_mapping(document)


# --- latency bins ------------------------------------------------------------------------


def encode_bins(sketch: DDSketch) -> dict[str, Any]:
    """A sketch's bins as JSON: ``{"zero": n, "bins": {"<key>": count, ...}}``.

    >>> s = DDSketch(RELATIVE_ACCURACY); s.add(0.0); s.add(10.0); s.add(10.05)
    >>> encode_bins(s)
    {'zero': 1, 'bins': {'116': 2}}
    """
    negative = cast(DenseStore, sketch._negative_store)
    if negative.count:
        raise ValueError("the sketch holds negative values; latencies are never negative")
    store = cast(DenseStore, sketch._store)
    offset = store.offset
    bins = {str(offset + index): int(count) for index, count in enumerate(store.bins) if count}
    return {"zero": int(sketch._zero_count), "bins": bins}


def decode_bins(bins: Mapping[str, Any]) -> DDSketch:
    """The sketch ``encode_bins`` wrote: every quantile as the original's."""
    sketch = DDSketch(RELATIVE_ACCURACY)
    mapping = sketch._mapping
    if bins["zero"]:
        sketch.add(0.0, bins["zero"])
    for key, count in bins["bins"].items():
        sketch.add(mapping.value(int(key)), count)
    return sketch


def add_bins(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two rows' bins merged: the counts of each key added."""
    merged = dict(a["bins"])
    for key, count in b["bins"].items():
        merged[key] = merged.get(key, 0) + count
    return {"zero": a["zero"] + b["zero"], "bins": merged}


def percentile_ms(sketch: DDSketch, q: float) -> Decimal | None:
    """The sketch's quantile ``q`` in ms, rounded half-even to 0.001; None when empty."""
    value = sketch.get_quantile_value(q)
    if value is None:
        return None
    return Decimal(repr(float(value))).quantize(_MS, rounding=ROUND_HALF_EVEN)


# --- rows --------------------------------------------------------------------------------


def minute_key(bucket_start: datetime) -> str:
    """A row's ``minute``: its bucket start as ISO 8601 UTC text.

    >>> minute_key(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    '2026-03-02T09:00:00+00:00'
    """
    return bucket_start.astimezone(UTC).isoformat()


def _add_counts(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    merged = dict(a)
    for name, count in b.items():
        merged[name] = merged.get(name, 0) + count
    return merged


def window_row(window: MinuteWindow, existing: Row | None = None) -> Row:
    """The ``slo_windows`` row of a one-minute window, merged into ``existing`` (its
    stored row, when there is one): counts and bins add, percentiles from the merged bins."""
    total, errors = window.total, window.errors
    slo_good = {s.name: window.good_for(s) for s in window.slos if window.applies(s)}
    bins = encode_bins(window.sketch)
    if existing is not None:
        total += existing["total"]
        errors += existing["errors"]
        slo_good = _add_counts(existing["slo_good"], slo_good)
        bins = add_bins(existing["latency_bins"], bins)
    sketch = decode_bins(bins)
    p50, p95, p99 = (percentile_ms(sketch, q) if total else None for q in PERCENTILES)
    bucket_start = window.bucket_start
    return {
        "service": window.service,
        "endpoint": window.endpoint,
        "minute": minute_key(bucket_start),
        "bucket_start": bucket_start,
        "total": total,
        "errors": errors,
        "slo_good": slo_good,
        "latency_bins": bins,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
    }


# --- alerts ------------------------------------------------------------------------------


def breach_id(alert: Alert) -> str:
    """The breach id ``AuditTrail.record_slo_breach`` gives ``alert``: (SLO, rule, end).

    The ledger refuses a second breach with it: one episode is recorded once.
    """
    return SloBreach.breach_id(alert.slo, alert.rule, alert.window_end)


def _minutes(span: timedelta) -> int:
    return span // timedelta(minutes=1)


def alert_json(alert: Alert) -> bytes:
    """An alert as the ``slo.alerts`` message: sorted keys, decimals as strings, windows
    as ``<name>_minutes``, times ISO 8601 UTC, plus its ``breach_id``.

    >>> json.loads(alert_json(alert))["long_window_minutes"]  # doctest: +SKIP
    60
    """
    document: dict[str, Any] = {"breach_id": breach_id(alert)}
    for spec in fields(alert):
        value = getattr(alert, spec.name)
        if isinstance(value, Decimal):
            document[spec.name] = format(value, "f")  # never an exponent: 0E-9 -> 0.000000000
        elif isinstance(value, timedelta):
            document[f"{spec.name}_minutes"] = _minutes(value)
        elif isinstance(value, datetime):
            document[spec.name] = value.astimezone(UTC).isoformat()
        else:
            document[spec.name] = value
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


# --- the sink ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SloBatch:
    """What one ``process`` call did."""

    samples: int  # samples counted (new offsets, decoded)
    skipped: int  # records at or below the tracked offset: counted before
    rejected: list[Rejection] = field(default_factory=list)  # for telemetry.dlq
    windows: int = 0  # slo_windows rows inserted or updated
    alerts: list[Alert] = field(default_factory=list)  # for slo.alerts
    breaches_recorded: int = 0  # alerts whose breach is in the ledger (new or not)
    breaches_duplicate: int = 0  # of those, the ones already recorded before


class SloSink:
    """Counts ``telemetry.requests`` batches into ``slo_windows`` and records breaches.

    Owns a store, a view session and an ``AuditTrail`` (close it, or use ``with``).

    >>> with SloSink(Settings(database_url=url)) as sink:  # doctest: +SKIP
    ...     sink.restore()
    ...     batch = sink.process(0, records)
    >>> batch.samples, batch.skipped, len(batch.rejected)  # doctest: +SKIP
    (4998, 0, 2)
    """

    def __init__(
        self, settings: Settings, slos: Sequence[SLO] | None = None, *, actor: str = "slo-worker"
    ) -> None:
        if not isinstance(actor, str) or not actor.strip():
            raise ValueError(f"actor={actor!r} must be a non-empty string")
        self.slos = tuple(load_slos() if slos is None else slos)
        self.actor = actor
        self.evaluator = BurnRateEvaluator(self.slos)
        self._now: datetime | None = None  # the newest sample time evaluated
        self._store = open_store(settings)
        try:
            self._session = self._store.view_session()
            try:
                self._trail = AuditTrail(env=application_env(settings))
            except BaseException:
                self._session.close()
                raise
        except BaseException:
            self._store.close()
            raise

    def close(self) -> None:
        try:
            self._trail.close()
        finally:
            try:
                self._session.close()
            finally:
                self._store.close()

    def __enter__(self) -> SloSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def position(self, partition: int) -> int | None:
        """The last offset of ``partition`` counted, None before the first."""
        return self._session.tracked(tracking_name(partition))

    # --- restore ---------------------------------------------------------------------------

    def restore(self, now: datetime | None = None) -> int:
        """Rebuild the evaluator from the endpoint rows of the 30 days before ``now``
        (default: the end of the newest row's minute); return the rows read.

        Firing alerts are not restored: see the module docstring, "Restart".
        """
        sql = queries(self._session.backend, "streams")
        if now is None:
            newest = self._session.query(_COUNTS, sql["slo_newest_window"], {"all": ALL_ENDPOINTS})
            if not newest:
                self.evaluator = BurnRateEvaluator(self.slos)
                self._now = None
                return 0
            now = newest[0]["bucket_start"] + timedelta(minutes=1)
        if now.tzinfo is None:
            raise ValueError(f"now={now.isoformat()} has no time zone; give UTC")
        hour = math.floor(now.timestamp() / 3600)
        since = datetime.fromtimestamp(hour * 3600, UTC) - timedelta(days=RESTORE_DAYS)
        rows = self._session.query(
            _COUNTS, sql["slo_windows_since"], {"all": ALL_ENDPOINTS, "since": since}
        )
        evaluator = BurnRateEvaluator(self.slos)
        for row in rows:
            minute = math.floor(row["bucket_start"].timestamp() / 60)
            window = MinuteWindow.from_counts(
                row["service"],
                row["endpoint"],
                minute,
                self.slos,
                total=row["total"],
                errors=row["errors"],
                slo_good=row["slo_good"],
            )
            evaluator.add_window(window)
        self.evaluator = evaluator
        self._now = None
        return len(rows)

    # --- process ---------------------------------------------------------------------------

    def process(self, partition: int, records: Sequence[RawMessage]) -> SloBatch:
        """Count one partition's batch exactly once; evaluate; record breaches.

        ``records`` are in offset order, all of ``partition``. Raises
        SloPartitionConflictError, writing nothing, when another worker moved the
        partition's offset meanwhile. An error recording a breach propagates after the
        windows were committed: reopen the sink and ``restore()``; the redelivered batch
        then fires the alert again at the same window end, and records it.
        """
        name = tracking_name(partition)
        tracked = self._session.tracked(name)
        done = -1 if tracked is None else tracked
        samples: list[RequestSample] = []
        rejected: list[Rejection] = []
        skipped = 0
        newest: datetime | None = None
        previous = -1
        for record in records:
            if record.partition != partition:
                raise ValueError(
                    f"record {record.topic}:{record.partition}@{record.offset} is not of "
                    f"partition {partition}; process each partition's records apart"
                )
            if record.offset <= previous:
                raise ValueError(
                    f"offset {record.offset} follows {previous}: give records in offset order"
                )
            previous = record.offset
            old = record.offset <= done
            try:
                sample = decode_sample(record.value)
            except SampleError as exc:
                if old:
                    skipped += 1  # rejected when first seen
                else:
                    rejected.append(Rejection(record, exc.field, str(exc)))
                continue
            if newest is None or sample.time > newest:
                newest = sample.time
            if old:
                skipped += 1
            else:
                samples.append(sample)
        written = 0
        if records and records[-1].offset > done:
            written = self._commit(name, tracked, records, samples)
        alerts: list[Alert] = []
        if newest is not None:
            self._now = newest if self._now is None else max(self._now, newest)
            alerts = self.evaluator.evaluate(self._now)
        duplicates = sum(self._record(alert) for alert in alerts)
        return SloBatch(
            samples=len(samples),
            skipped=skipped,
            rejected=rejected,
            windows=written,
            alerts=alerts,
            breaches_recorded=len(alerts),
            breaches_duplicate=duplicates,
        )

    def _commit(
        self,
        name: str,
        tracked: int | None,
        records: Sequence[RawMessage],
        samples: Sequence[RequestSample],
    ) -> int:
        """Advance the offset and merge the samples' windows in one transaction; then
        count the windows in the evaluator. Returns the rows written."""
        aggregator = MinuteAggregator(self.slos)
        aggregator.add_many(samples)
        windows = sorted(aggregator.close(_THE_END), key=lambda w: (w.service, w.endpoint, w.start))
        last = records[-1].offset
        with self._session.transaction():
            if not self._session.advance(name, tracked, last):
                raise SloPartitionConflictError(
                    f"{name} is no longer at offset {tracked} (batch {records[0].offset}.."
                    f"{last}): another SLO worker owns partition {records[0].partition}; "
                    "nothing of the batch was written. Run one SLO worker per partition "
                    "(one consumer group), or restart this one"
                )
            written = self._merge(windows) if windows else 0
        for window in windows:
            self.evaluator.add_window(window)
        return written

    def _merge(self, windows: Iterable[MinuteWindow]) -> int:
        session = self._session
        session.advance(WINDOWS_LOCK, None, -1)  # locks the row until commit; stays at 0
        new: list[Row] = []
        changed: list[Row] = []
        for window in windows:
            where = {
                "service": window.service,
                "endpoint": window.endpoint,
                "minute": minute_key(window.bucket_start),
            }
            existing = session.fetch(SLO_WINDOWS, where)
            row = window_row(window, existing)
            (new if existing is None else changed).append(row)
        session.insert(SLO_WINDOWS, new)
        session.update(SLO_WINDOWS, changed)
        return len(new) + len(changed)

    def _record(self, alert: Alert) -> bool:
        """Record ``alert`` as an SLO breach; True when it was recorded before."""
        identifier = breach_id(alert)
        try:
            self._trail.record_slo_breach(
                slo=alert.slo,
                service=alert.service,
                severity=alert.severity,
                rule=alert.rule,
                long_window_minutes=_minutes(alert.long_window),
                short_window_minutes=_minutes(alert.short_window),
                burn_rate_long=alert.burn_rate_long,
                burn_rate_short=alert.burn_rate_short,
                threshold=alert.threshold,
                sli_long=alert.sli_long,
                sli_short=alert.sli_short,
                window_end=alert.window_end,
                error_budget_remaining=alert.error_budget_remaining,
                actor=self.actor,
                occurred_at=alert.window_end,  # event time: the alert holds at its window end
                source_event_id=f"slo-breach:{identifier}",
            )
        except DuplicateSourceError:
            return True
        except IntegrityError:
            # The breach's aggregate id is its breach id: a second one collides here.
            if SloBreach.create_id(identifier) not in self._trail.repository:
                raise
            return True
        return False
