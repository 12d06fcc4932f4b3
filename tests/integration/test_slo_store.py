"""The SLO sink on both backends: telemetry batches counted into ``slo_windows`` exactly
once, and a burst of errors recorded as SLO breaches in the ledger once (default slo.toml)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from ledger import Settings, open_store
from ledger.errors import DuplicateSourceError
from ledger.views import Row
from projections.core import decoder
from streams.messages import RawMessage
from streams.slo import Alert, BurnRateEvaluator
from streams.slo_store import (
    SLO_WINDOWS,
    SloBatch,
    SloPartitionConflictError,
    SloSink,
    alert_json,
)
from streams.topics import TELEMETRY_REQUESTS
from tests.support.databases import ledger_url

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BREACH = "domain.reliability:SloBreach.Recorded"


def _value(service: str, endpoint: str, latency: float, status: int | str, at: datetime) -> bytes:
    document = {
        "service": service,
        "endpoint": endpoint,
        "latency_ms": latency,
        "status": status,
        "time": at.isoformat(),
    }
    return json.dumps(document).encode()


def _records(values: Sequence[bytes], first: int = 0, partition: int = 0) -> list[RawMessage]:
    return [
        RawMessage(TELEMETRY_REQUESTS, partition, first + n, None, value)
        for n, value in enumerate(values)
    ]


def _traffic() -> list[bytes]:
    """60 samples over minutes 09:00 and 09:01, ten a minute per endpoint (see the test)."""
    values = []
    for minute in (0, 1):
        for i in range(10):
            at = T0 + timedelta(minutes=minute, seconds=i * 6)
            status_orders = 503 if i == 9 else 200
            status_quotes = "error" if (minute, i) == (1, 0) else 200
            values.append(_value("trading-api", "/orders", 5 * (i + 1) + minute, status_orders, at))
            values.append(_value("trading-api", "/quotes", 20 * (i + 1), status_quotes, at))
            values.append(_value("trade-execution", "/route", 10 * i, 200, at))
    return values


def _rows(url: str) -> list[Row]:
    with open_store(Settings(database_url=url)) as store, store.view_session() as session:
        return list(session.scan(SLO_WINDOWS))


@pytest.fixture
def sink(url: str) -> Iterator[SloSink]:
    with SloSink(Settings(database_url=url)) as opened:
        yield opened


def _counts(batch: SloBatch) -> tuple[int, int, int, int]:
    return batch.samples, batch.skipped, len(batch.rejected), batch.windows


def _one_batch_rows(backend: str, tmp_path: Path, values: Sequence[bytes]) -> list[Row]:
    """The rows a fresh database holds after all ``values`` in one batch."""
    with ledger_url(backend, tmp_path) as other, SloSink(Settings(database_url=other)) as single:
        single.process(0, _records(values))
        return _rows(other)


def test_two_batches_into_the_same_minutes_make_the_rows_of_one_batch(
    sink: SloSink, url: str, backend: str, tmp_path: Path
) -> None:
    values = _traffic()
    first = sink.process(0, _records(values[:30]))
    second = sink.process(0, _records(values[30:], first=30))
    # 3 endpoints + 2 services, in minute 09:00 (offsets 0..29), then minute 09:01
    assert (_counts(first), _counts(second)) == ((30, 0, 0, 5), (30, 0, 0, 5))
    assert (first.alerts, sink.position(0)) == ([], 59)
    # At 09:01, minute 09:00 is complete: trading-api 1 error and 6 at >= 100 ms in 20 (burn
    # 100, 50 and 6), trade-execution 5 at >= 50 ms in 10 (burn 10).
    assert [(a.slo, a.rule, a.burn_rate_long) for a in second.alerts] == [
        ("trading-api-availability", "page-1h", Decimal(100)),
        ("trading-api-availability", "page-6h", Decimal(100)),
        ("trading-api-availability", "ticket-3d", Decimal(100)),
        ("trading-api-latency-p95", "ticket-3d", Decimal(6)),
        ("trading-api-error-rate", "page-1h", Decimal(50)),
        ("trading-api-error-rate", "page-6h", Decimal(50)),
        ("trading-api-error-rate", "ticket-3d", Decimal(50)),
        ("trade-execution-latency-p95", "page-6h", Decimal(10)),
        ("trade-execution-latency-p95", "ticket-3d", Decimal(10)),
    ]
    rows = _rows(url)
    assert rows == _one_batch_rows(backend, tmp_path, values)
    by_key = {(r["service"], r["endpoint"], r["minute"][11:16]): r for r in rows}
    assert sorted(by_key) == [
        ("trade-execution", "*", "09:00"),
        ("trade-execution", "*", "09:01"),
        ("trade-execution", "/route", "09:00"),
        ("trade-execution", "/route", "09:01"),
        ("trading-api", "*", "09:00"),
        ("trading-api", "*", "09:01"),
        ("trading-api", "/orders", "09:00"),
        ("trading-api", "/orders", "09:01"),
        ("trading-api", "/quotes", "09:00"),
        ("trading-api", "/quotes", "09:01"),
    ]
    service = by_key[("trading-api", "*", "09:01")]
    assert (service["minute"], service["bucket_start"]) == (
        "2026-03-02T09:01:00+00:00",
        T0 + timedelta(minutes=1),
    )
    # /orders 6..51 ms, one 503; /quotes 20..200 ms, one "error": 4 of them under 100 ms
    assert (service["total"], service["errors"], service["slo_good"]) == (
        20,
        2,
        {
            "trading-api-availability": 18,
            "trading-api-error-rate": 18,
            "trading-api-latency-p95": 14,
        },
    )
    route = by_key[("trade-execution", "/route", "09:00")]
    assert (route["total"], route["errors"], route["slo_good"]) == (
        10,
        0,
        {"trade-execution-latency-p95": 5},  # 0, 10, 20, 30, 40 of 0..90 ms are under 50
    )
    # Bin keys ceil(ln(v) / ln(1.0202...)) of 10..90 ms; 0 ms is the zero bin.
    assert route["latency_bins"] == {
        "zero": 1,
        "bins": {"116": 1, "150": 1, "171": 1, "185": 1, "196": 1, "205": 1, "213": 1, "220": 1,
                 "225": 1},
    }  # fmt: skip
    # Ranks q * 9 = 4.5, 8.55, 8.91 (lower): the 40 ms bin, then the 80 ms bin twice.
    assert (route["p50_ms"], route["p95_ms"], route["p99_ms"]) == (
        Decimal("40.048"),
        Decimal("80.648"),
        Decimal("80.648"),
    )


def test_a_redelivered_batch_changes_nothing(sink: SloSink, url: str) -> None:
    records = _records(_traffic()[:30])
    sink.process(0, records)
    before = _rows(url)
    again = sink.process(0, records)
    assert _counts(again) == (0, 30, 0, 0)
    assert (again.alerts, again.breaches_recorded) == ([], 0)
    assert _rows(url) == before
    assert sink.position(0) == 29


def test_an_overlapping_batch_counts_only_its_new_records(
    sink: SloSink, url: str, backend: str, tmp_path: Path
) -> None:
    values = _traffic()
    sink.process(0, _records(values[:30]))
    overlap = sink.process(0, _records(values[20:], first=20))  # offsets 20..29 were counted
    assert _counts(overlap) == (30, 10, 0, 5)
    assert sink.position(0) == 59
    assert _rows(url) == _one_batch_rows(backend, tmp_path, values)
    # Partitions are tracked apart: offsets 0.. of partition 1 are new.
    other = sink.process(1, _records(values[:3], partition=1))
    assert (_counts(other), sink.position(1), sink.position(0)) == ((3, 0, 0, 5), 2, 59)


def test_rejected_samples_name_their_field_and_are_not_counted(sink: SloSink, url: str) -> None:
    at = T0 + timedelta(seconds=5)
    values = [
        _value("trading-api", "/orders", 12.5, 200, at),
        b"{not json",
        b'["a list"]',
        _value("trading-api", "/orders", -3, 200, at),
        _value("trading-api", "", 1, 200, at),
        _value("trading-api", "/orders", 1, 700, at),
        json.dumps({"service": "a", "endpoint": "/b", "latency_ms": 1, "status": 200}).encode(),
        _value("trading-api", "/orders", 1, 200, at).replace(b"+00:00", b""),
    ]
    batch = sink.process(0, _records(values, first=100))
    assert (batch.samples, batch.skipped, batch.windows) == (1, 0, 2)
    assert [(r.message.offset, r.field, r.error) for r in batch.rejected] == [
        (101, "message", "message=b'{not json' is not JSON: unexpected character, expected a "
         "string key: line 1 column 2 (char 1)"),
        (102, "message", "message=b'[\"a list\"]' is a list, not a JSON object"),
        (103, "latency_ms", "latency_ms=-3 must be >= 0"),
        (104, "endpoint", "endpoint='' must not be empty"),
        (105, "status", "status=700 must be an HTTP status 100-599, 'ok' or 'error'"),
        (106, "time", "time=None is missing"),
        (107, "time", "time='2026-03-02T09:00:05' has no time zone; give UTC"),
    ]  # fmt: skip
    assert batch.rejected[0].message.value == b"{not json"  # the original bytes, for the DLQ
    assert sink.position(0) == 107  # the last offset, a rejected one, is done too
    assert [(r["endpoint"], r["total"]) for r in _rows(url)] == [("*", 1), ("/orders", 1)]
    again = sink.process(0, _records(values, first=100))
    assert _counts(again) == (0, 8, 0, 0)  # dead-lettered when first seen


def test_a_second_worker_on_the_partition_writes_nothing(
    sink: SloSink, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = _traffic()
    sink.process(0, _records(values[:30]))
    before = _rows(url)
    with SloSink(Settings(database_url=url)) as rival:
        # The rival read the partition's offset before this sink moved it.
        monkeypatch.setattr(rival._session, "tracked", lambda name: None)
        with pytest.raises(
            SloPartitionConflictError,
            match=r"slo:telemetry.requests:0 is no longer at offset None \(batch 0..59\): "
            r"another SLO worker owns partition 0; nothing of the batch was written",
        ):
            rival.process(0, _records(values))
    assert _rows(url) == before
    assert sink.position(0) == 29


def test_records_of_another_partition_or_out_of_order_are_refused(sink: SloSink) -> None:
    values = _traffic()[:2]
    with pytest.raises(ValueError, match=r"record telemetry.requests:1@0 is not of partition 0"):
        sink.process(0, _records(values, partition=1))
    with pytest.raises(ValueError, match="offset 0 follows 0: give records in offset order"):
        sink.process(0, [*_records(values[:1]), *_records(values[1:])])
    assert sink.position(0) is None


def test_a_late_sample_merges_into_its_minute(sink: SloSink, url: str) -> None:
    def orders(status: int, at: datetime) -> bytes:
        return _value("trading-api", "/orders", 10, status, at)

    sink.process(
        0, _records([orders(500, T0), orders(200, T0), orders(200, T0 + timedelta(minutes=10))])
    )
    # 09:00 was evaluated as complete at 09:10; a sample of it arrives now.
    late = sink.process(0, _records([orders(500, T0 + timedelta(seconds=59))], first=3))
    assert (late.samples, late.windows) == (1, 2)  # /orders and "*" at 09:00, updated
    rows = {(r["endpoint"], r["minute"][11:16]): (r["total"], r["errors"]) for r in _rows(url)}
    assert rows == {
        ("*", "09:00"): (3, 2),
        ("/orders", "09:00"): (3, 2),
        ("*", "09:10"): (1, 0),
        ("/orders", "09:10"): (1, 0),
    }
    # The evaluator counts it too: 2 bad of 4 in the hour before 09:11.
    burn = sink.evaluator.burn_rate("trading-api-availability", 60, T0 + timedelta(minutes=11))
    assert burn == Decimal(1000)  # 50 % bad / 0.05 % budget


# --- a burst of errors -----------------------------------------------------------------------

T_END = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _burst() -> tuple[list[RawMessage], list[RawMessage]]:
    """Two batches of trading-api traffic, every request 20 ms.

    Batch 1: 5,000 clean requests two days before T_END, 1,000 at 07:00.
    Batch 2: 20 requests a minute from 09:55 to 09:59, 2 of the last minute's 500s; one
    request at 10:00, which makes 09:59 complete: ``now`` is T_END.
    """
    background = T_END - timedelta(days=2)
    first = [
        _value("trading-api", "/orders" if n % 2 else "/quotes", 20, 200, background)
        for n in range(5_000)
    ] + [_value("trading-api", "/orders", 20, 200, T_END - timedelta(hours=3))] * 1_000
    second = [
        _value("trading-api", "/orders", 20, 500 if (minute, n) in ((59, 0), (59, 1)) else 200,
               T0 + timedelta(minutes=minute, seconds=n))
        for minute in range(55, 60)
        for n in range(20)
    ] + [_value("trading-api", "/quotes", 20, 200, T_END)]  # fmt: skip
    return _records(first), _records(second, first=6_000)


def _page(slo: str, burn: int, remaining: str) -> Alert:
    return Alert(
        slo=slo,
        service="trading-api",
        severity="page",
        rule="page-1h",
        long_window=timedelta(hours=1),
        short_window=timedelta(minutes=5),
        burn_rate_long=Decimal(burn),
        burn_rate_short=Decimal(burn),
        threshold=Decimal("14.4"),
        sli_long=Decimal("0.98"),
        sli_short=Decimal("0.98"),
        window_end=T_END,
        error_budget_remaining=Decimal(remaining),
    )


# 2 errors in the last hour's 100 requests: availability (budget 0.05 %) burns 40, the error
# rate (0.1 %) 20, both over 14.4 on 1 h and 5 min. Over 6 h: 2 in 1,100 burns 3.64 and 1.82,
# under 6; over 3 d: 2 in 6,100 burns 0.66 and 0.33, under 1. The 30-day budget keeps
# 1 - 40/61 = 21/61 and 1 - 20/61 = 41/61.
PAGES = [
    _page("trading-api-availability", 40, "0.344262295"),
    _page("trading-api-error-rate", 20, "0.672131148"),
]
WINDOWS = (1, 5, 30, 60, 360, 4320)


def _burn_rates(evaluator: BurnRateEvaluator) -> list[tuple[object, ...]]:
    return [
        (slo.name, minutes, evaluator.burn_rate(slo.name, minutes, T_END))
        for slo in evaluator.slos
        for minutes in WINDOWS
    ] + [(slo.name, evaluator.error_budget(slo.name, T_END)) for slo in evaluator.slos]


def _breaches(url: str) -> list[dict[str, Any]]:
    with open_store(Settings(database_url=url)) as store:
        records = store.select_records(0, None, [BREACH], 100)
    return [decoder().decode(r.state) for r in records]


def test_a_burst_of_errors_pages_once_and_the_breach_is_recorded_once(
    sink: SloSink, url: str
) -> None:
    background, burst = _burst()
    quiet = sink.process(0, background)
    assert (_counts(quiet), quiet.alerts) == ((6_000, 0, 0, 5), [])  # 3 rows, then 2
    paged = sink.process(0, burst)
    assert _counts(paged) == (101, 0, 0, 12)  # /orders and * for 5 minutes, /quotes and *
    assert paged.alerts == PAGES
    assert (paged.breaches_recorded, paged.breaches_duplicate) == (2, 0)
    assert sink.evaluator.burn_rate("trading-api-availability", 360, T_END) == Decimal(
        "3.636363636"
    )
    assert sink.evaluator.burn_rate("trading-api-error-rate", 4320, T_END) == Decimal("0.327868852")
    message = json.loads(alert_json(paged.alerts[0]))
    assert message["breach_id"] == "trading-api-availability/page-1h/2026-03-02T10:00:00+00:00"
    assert (message["burn_rate_long"], message["long_window_minutes"]) == ("40.000000000", 60)
    before = _burn_rates(sink.evaluator)

    # A restart: a new sink restores the counts from slo_windows, then Kafka redelivers the
    # burst (its offsets were not committed). The rule fires again at the same window end.
    with SloSink(Settings(database_url=url)) as restarted:
        assert restarted.restore() == 9  # endpoint rows: 2 + 1 in batch 1, 5 + 1 in batch 2
        assert _burn_rates(restarted.evaluator) == before
        again = restarted.process(0, burst)
        assert _counts(again) == (0, 101, 0, 0)
        assert again.alerts == PAGES
        assert (again.breaches_recorded, again.breaches_duplicate) == (2, 2)
        assert restarted.process(0, burst).alerts == []  # firing: no new alert
    breaches = _breaches(url)
    assert [
        (b["breach_id"], b["burn_rate_long"], b["source_event_id"], b["actor"]) for b in breaches
    ] == [
        (
            "trading-api-availability/page-1h/2026-03-02T10:00:00+00:00",
            Decimal(40),
            "slo-breach:trading-api-availability/page-1h/2026-03-02T10:00:00+00:00",
            "slo-worker",
        ),
        (
            "trading-api-error-rate/page-1h/2026-03-02T10:00:00+00:00",
            Decimal(20),
            "slo-breach:trading-api-error-rate/page-1h/2026-03-02T10:00:00+00:00",
            "slo-worker",
        ),
    ]


def test_restore_reads_the_last_30_days_and_an_empty_table(sink: SloSink, url: str) -> None:
    assert sink.restore() == 0
    background, burst = _burst()
    sink.process(0, background)
    sink.process(0, burst)
    with SloSink(Settings(database_url=url)) as restarted:
        # 30 days before 2026-04-01T08:xx (whole hours): from 2026-03-02T08:00, the burst's 6 rows
        assert restarted.restore(datetime(2026, 4, 1, 8, 30, tzinfo=UTC)) == 6
        assert restarted.restore(datetime(2026, 4, 1, 7, 59, tzinfo=UTC)) == 7  # + 07:00
        with pytest.raises(ValueError, match="has no time zone"):
            restarted.restore(datetime(2026, 4, 1))


def test_a_breach_the_ledger_refuses_counts_only_when_it_is_recorded(
    sink: SloSink, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    background, burst = _burst()
    sink.process(0, background)

    # Were the facade to hand the source event id to the ledger, a repeat would be refused
    # as a duplicate source: already recorded.
    def duplicate(**command: Any) -> None:
        raise DuplicateSourceError([command["source_event_id"]], "UNIQUE constraint failed")

    monkeypatch.setattr(sink._trail, "record_slo_breach", duplicate)
    paged = sink.process(0, burst)
    assert (paged.alerts, paged.breaches_recorded, paged.breaches_duplicate) == (PAGES, 2, 2)

    # A conflict for a breach the ledger does not hold is an error, not a duplicate.
    def conflict(**command: Any) -> None:
        raise IntegrityError("an event with that originator_id and version is already recorded")

    monkeypatch.setattr(sink._trail, "record_slo_breach", conflict)
    assert sink.restore() == 9  # as after a restart: the alerts fire again
    with pytest.raises(IntegrityError, match="already recorded"):
        sink.process(0, burst)
    assert _breaches(url) == []
    assert sink.position(0) == 6_100
