"""Streams benchmark: what one stream worker does per second, against what the broker gives.

A benchmark, never a timed test: its figures depend on the machine.

One run, on the bundled broker (``streams.broker.bundled_broker``: Tansu, memory-only, a
fresh one per run, on this machine) and one PostgreSQL server, in a fresh migrated
database ``regledger_bench_streams`` (dropped and recreated from the admin DSN, dropped
again at the end unless ``--keep``). The messages of every phase are produced first,
untimed; each phase is timed ``--repeat`` times and its figure is the median.

* ``limit`` -- raw aiokafka consumption: ``--raw`` telemetry values (the shape the SLO
  phase reads) on a fresh one-partition topic, read by an ``AIOKafkaConsumer`` (partition
  0 assigned, seek to the beginning, ``getmany`` of up to 100,000 records at a time)
  until every one is in; messages/s. Every rate is also given as ``ratio`` = rate / limit;
* ``relay`` -- ``Relay(store, KafkaSender(url)).run()`` over a ledger of ``--events``
  ``place_order`` events (recorded beforehand through ``AuditTrail``, 1,000 orders per
  append) to ``ledger.events``; the relay's tracked position is reset between repeats;
  events/s;
* ``ingestion`` -- ``--orders`` valid ``place_order`` messages per repeat on
  ``audit.trading`` (unique source event ids and client order ids; each repeat reads
  offsets of its own), consumed in batches of ``streams.agents.INGEST_BATCH`` and
  recorded by ``Ingestor.ingest`` batch by batch in one worker thread, as the agent does
  (the consumer's fetcher keeps fetching meanwhile), end to end; messages/s per worker;
* ``slo`` -- ``--samples`` request samples per repeat on ``telemetry.requests`` (2
  services, 4 endpoints, ~1 % errors, 30 minutes of event time; each repeat the next 30
  minutes, on the same restored ``SloSink``), consumed in batches of
  ``streams.agents.SLO_BATCH`` and handed to ``SloSink.process`` the same way; samples/s
  per worker.

For ingestion and SLO, ``core_rate`` is the same count over the seconds spent inside the
core's call alone (in its thread): the gap to ``rate`` is what consuming adds. Every batch
must come out fully recorded (ingestion) or counted (SLO): a rejection stops the bench,
since its rate would not be the one the README quotes.

Targets (per worker): ingestion >= 10,000 messages/s, SLO >= 50,000 samples/s.

``--quick`` is a CI-size run (well under a minute); ``--profile`` adds one untimed,
profiled pass of the relay, ingestion and SLO phases on data of its own and prints where
their time goes to stderr (cProfile of ``Relay.run``, ``Ingestor.ingest`` and
``SloSink.process`` in the thread that runs them; the event loops are not in it).

Usage: ``python bench/streams.py [--quick] [--repeat 3] [--raw 200000] [--events 100000]
[--orders 50000] [--samples 500000] [--dsn ADMIN_DSN] [--keep] [--profile] [--json]``;
``--dsn`` defaults to ``$REGLEDGER_TEST_DSN``, else
``postgresql://postgres@127.0.0.1:5432/postgres``. Progress goes to stderr, the table to
stdout; with ``--json`` exactly one JSON object goes to stdout and the table to stderr:
``limit``, ``relay``, ``ingestion`` and ``slo``, each with ``rate``, ``ratio``, ``target``
(null when none), ``n`` (items per run), ``runs`` and ``seconds`` per run, and what each
run did; then the run's context.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository first, then bench/ (common,
    _BENCH = Path(__file__).resolve().parent  # kafka_bench), so this file does not hide `streams`
    sys.path[:] = [str(_BENCH.parent), *(p for p in sys.path if Path(p or ".").resolve() != _BENCH)]
    sys.path.append(str(_BENCH))

from common import db_url, progress_bar, recreate_databases, run_and_report, sized_options
from kafka_bench import Phase, Profiled, consume_into, measure_raw, produce, run_async
from rich.console import Console
from rich.table import Table

from console.demo import ALGO_DECISION, ALGO_EXECUTION, FIRM_LEI, INSTRUMENTS
from console.trail import open_trail
from ledger import Settings, open_store
from streams.agents import INGEST_BATCH, SLO_BATCH
from streams.broker import bundled_broker
from streams.ingestion import Ingestor, IngestResult
from streams.messages import RawMessage
from streams.relay import LEDGER_EVENTS, RELAY_NAME, KafkaSender, Relay
from streams.settings import bootstrap_servers
from streams.slo_store import SloBatch, SloSink
from streams.topics import TELEMETRY_REQUESTS, ensure_topics

BENCH_DB = "regledger_bench_streams"
RAW_TOPIC = "bench.raw"
AUDIT_TRADING = "audit.trading"
SAVE_ORDERS = 1_000  # orders per append while the relay's ledger is recorded
SLO_SPAN = timedelta(minutes=30)  # event time covered by one repeat's samples
ERROR_SHARE = 0.01
SEED = 20_260_302

TARGET_INGESTION = 10_000
TARGET_SLO = 50_000

SIZES = {  # (full, --quick)
    "raw": (200_000, 20_000),
    "events": (100_000, 5_000),
    "orders": (50_000, 3_000),
    "samples": (500_000, 25_000),
}

# (service, endpoint, median latency ms, share of requests); the services of slo.toml.
ENDPOINTS = (
    ("trading-api", "/v1/orders", 24.0, 0.4),
    ("trading-api", "/v1/positions", 12.0, 0.2),
    ("trade-execution", "/v1/executions", 8.0, 0.3),
    ("trade-execution", "/v1/routes", 15.0, 0.1),
)


# --- workloads -----------------------------------------------------------------------------


def order_fields(prefix: str, i: int, moment: datetime) -> dict[str, str]:
    """The keyword arguments of ``AuditTrail.place_order`` for order ``i`` (valid ISIN,
    MIC and LEI: the demo's instruments and firm), all as strings, JSON-ready."""
    instrument = INSTRUMENTS[i % len(INSTRUMENTS)]
    price = instrument.opening_price + (i % 41 - 20) * instrument.opening_price / 1_000
    return {
        "client_order_id": f"{prefix}-{i:08d}",
        "isin": instrument.isin,
        "venue": instrument.venue,
        "side": "BUY" if i % 2 else "SELL",
        "quantity": str(instrument.lot * (1 + i % 20)),
        "limit_price": f"{price:.2f}",
        "currency": instrument.currency,
        "trading_capacity": "DEAL",
        "executing_entity_lei": FIRM_LEI,
        "investment_decision": ALGO_DECISION,
        "execution_decision": ALGO_EXECUTION,
        "actor": "order-management",
        "occurred_at": moment.isoformat(timespec="microseconds").replace("+00:00", "Z"),
    }


def order_messages(prefix: str, first: int, count: int, start: datetime) -> list[bytes]:
    """``count`` place_order messages for ``audit.trading``, orders ``first`` on."""
    return [
        json.dumps(
            {
                "source_event_id": f"oms-{prefix}-{i:08d}",
                "command": "place_order",
                "fields": order_fields(prefix, i, start + timedelta(milliseconds=i)),
            },
            separators=(",", ":"),
        ).encode()
        for i in range(first, first + count)
    ]


def telemetry(count: int, start: datetime, span: timedelta, rng: random.Random) -> list[bytes]:
    """``count`` request samples spread evenly over ``span`` from ``start`` (a little
    jitter), ``ERROR_SHARE`` of them errors, lognormal latencies."""
    names = [(s, e) for s, e, _, _ in ENDPOINTS]
    medians = {(s, e): math.log(m) for s, e, m, _ in ENDPOINTS}
    weights = [w for *_, w in ENDPOINTS]
    step = span.total_seconds() / count
    origin = start.timestamp()
    picks = rng.choices(names, weights, k=count)
    out = []
    for i, (service, endpoint) in enumerate(picks):
        error = rng.random() < ERROR_SHARE
        moment = origin + min(span.total_seconds() - 1e-3, i * step + rng.random() * step)
        sample = {
            "service": service,
            "endpoint": endpoint,
            "latency_ms": round(rng.lognormvariate(medians[service, endpoint], 0.6), 3),
            "status": rng.choice((500, 503)) if error else 200,
            "time": datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds"),
        }
        out.append(json.dumps(sample, separators=(",", ":")).encode())
    return out


def record_orders(url: str, count: int, advance: Callable[[int], None]) -> None:
    """``count`` orders in the ledger through ``AuditTrail.place_order``, ``SAVE_ORDERS``
    per append (``trail.save`` collects, one real save per batch)."""
    trail = open_trail(Settings(database_url=url))
    pending: list[Any] = []
    save = trail.save

    def collect(*aggregates: Any, **_: Any) -> list[Any]:
        pending.extend(aggregates)
        return []

    def flush() -> None:
        if pending:
            save(*pending)
            advance(len(pending))
            pending.clear()

    trail.save = collect  # type: ignore[method-assign]
    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    try:
        for i in range(count):
            trail.place_order(**order_fields("R", i, start + timedelta(milliseconds=i)))
            if len(pending) >= SAVE_ORDERS:
                flush()
        flush()
    finally:
        trail.close()


# --- phases --------------------------------------------------------------------------------


def measure_limit(servers: str, args: argparse.Namespace, progress: Any) -> Phase:
    values = telemetry(args.raw, datetime(2026, 3, 2, 9, tzinfo=UTC), SLO_SPAN, random.Random(1))
    ensure_topics(f"kafka://{servers}", [RAW_TOPIC])
    produce(servers, RAW_TOPIC, values, progress)
    phase = measure_raw(servers, RAW_TOPIC, args.raw, args.repeat, progress)
    phase.extra["value_bytes"] = round(sum(map(len, values)) / len(values))
    return phase


def measure_relay(
    url: str, broker: str, args: argparse.Namespace, progress: Any, profiles: list[str]
) -> Phase:
    task = progress.add_task("relay: record the ledger", total=args.events)
    record_orders(url, args.events, lambda k: progress.advance(task, k))
    phase = Phase(args.events)
    store = open_store(Settings(database_url=url))
    try:
        last = store.max_position()
        assert last is not None and last + 1 == args.events, (last, args.events)
        with KafkaSender(broker) as sender:
            sender(LEDGER_EVENTS, [])  # creates the topic once, untimed
            runs = args.repeat + (1 if args.profile else 0)
            for i in range(runs):
                profiled = i == args.repeat
                with store.view_session() as session, session.transaction():
                    # Back to the start; advance to -1 rather than reset(), whose
                    # PostgreSQL query returns no row for _tracking's fetchone.
                    tracked = session.tracked(RELAY_NAME)
                    if tracked is not None:
                        assert session.advance(RELAY_NAME, tracked, -1)
                task = progress.add_task(
                    "relay: profiled" if profiled else f"relay ({i + 1})", total=args.events
                )
                with Relay(store, sender) as relay:
                    run: Callable[[], Any] = relay.run
                    if profiled:
                        run = Profiled(relay.run)
                    started = time.perf_counter()
                    batches = run()
                    seconds = time.perf_counter() - started
                progress.advance(task, sum(b.count for b in batches))
                assert batches[-1].last == last, batches[-1]
                if profiled:
                    assert isinstance(run, Profiled)
                    profiles.append(run.top(f"relay, {args.events:,} events"))
                else:
                    phase.add_run(seconds, {"batches": len(batches)})
    finally:
        store.close()
    return phase


def _check_ingested(outcomes: Sequence[IngestResult], count: int) -> dict[str, int]:
    recorded = sum(r.recorded for r in outcomes)
    rejected = [x for r in outcomes for x in r.rejected]
    if rejected or recorded != count:
        first = rejected[0].error if rejected else "none rejected"
        raise RuntimeError(
            f"ingestion recorded {recorded:,} of {count:,} messages "
            f"({len(rejected):,} rejected; first: {first})"
        )
    return {"events": sum(r.events for r in outcomes), "batches": len(outcomes)}


def measure_ingestion(
    url: str, servers: str, args: argparse.Namespace, progress: Any, profiles: list[str]
) -> Phase:
    runs = args.repeat + (1 if args.profile else 0)
    start = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    values = order_messages("I", 0, args.orders * runs, start)
    keys = [f"I-{i:08d}".encode() for i in range(len(values))]
    ensure_topics(f"kafka://{servers}", [AUDIT_TRADING])
    produce(servers, AUDIT_TRADING, values, progress, keys)
    phase = Phase(args.orders, target=TARGET_INGESTION)
    phase.extra["value_bytes"] = round(sum(map(len, values)) / len(values))
    phase.extra["batch"] = INGEST_BATCH
    settings = Settings(database_url=url)
    with Ingestor(settings) as ingestor:
        for i in range(runs):
            profiled = i == args.repeat
            task = progress.add_task(
                "ingestion: profiled" if profiled else f"ingestion ({i + 1})", total=args.orders
            )
            work: Callable[[list[RawMessage]], Any] = ingestor.ingest
            if profiled:
                work = Profiled(ingestor.ingest)
            consumed = run_async(
                consume_into(
                    servers, AUDIT_TRADING, i * args.orders, args.orders, INGEST_BATCH, work,
                    lambda k, t=task: progress.advance(t, k),
                )
            )  # fmt: skip
            facts = _check_ingested(consumed.outcomes, args.orders)
            if isinstance(work, Profiled):
                profiles.append(work.top(f"Ingestor.ingest, {args.orders:,} messages"))
            else:
                phase.add_run(consumed.seconds, facts, consumed.core_seconds)
    return phase


def _check_slo(outcomes: Sequence[SloBatch], count: int) -> dict[str, int]:
    samples = sum(b.samples for b in outcomes)
    skipped = sum(b.skipped for b in outcomes)
    rejected = [x for b in outcomes for x in b.rejected]
    if rejected or samples != count:
        first = rejected[0].error if rejected else "none rejected"
        raise RuntimeError(
            f"the SLO sink counted {samples:,} of {count:,} samples ({skipped:,} skipped, "
            f"{len(rejected):,} rejected; first: {first})"
        )
    return {
        "windows": sum(b.windows for b in outcomes),
        "alerts": sum(len(b.alerts) for b in outcomes),
        "breaches_recorded": sum(b.breaches_recorded for b in outcomes),
        "batches": len(outcomes),
    }


def measure_slo(
    url: str, servers: str, args: argparse.Namespace, progress: Any, profiles: list[str]
) -> Phase:
    runs = args.repeat + (1 if args.profile else 0)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    origin = now - SLO_SPAN * runs
    rng = random.Random(SEED)
    task = progress.add_task("slo: generate samples", total=runs)
    values: list[bytes] = []
    for i in range(runs):
        values += telemetry(args.samples, origin + SLO_SPAN * i, SLO_SPAN, rng)
        progress.advance(task)
    ensure_topics(f"kafka://{servers}", [TELEMETRY_REQUESTS])
    produce(servers, TELEMETRY_REQUESTS, values, progress)
    phase = Phase(args.samples, target=TARGET_SLO)
    phase.extra["value_bytes"] = round(sum(map(len, values)) / len(values))
    phase.extra["batch"] = SLO_BATCH
    del values
    sink = SloSink(Settings(database_url=url))
    try:
        sink.restore()
        for i in range(runs):
            profiled = i == args.repeat
            task = progress.add_task(
                "slo: profiled" if profiled else f"slo ({i + 1})", total=args.samples
            )
            process: Callable[[list[RawMessage]], Any] = _partition_zero(sink.process)
            if profiled:
                process = Profiled(process)
            consumed = run_async(
                consume_into(
                    servers, TELEMETRY_REQUESTS, i * args.samples, args.samples, SLO_BATCH,
                    process, lambda k, t=task: progress.advance(t, k),
                )
            )  # fmt: skip
            facts = _check_slo(consumed.outcomes, args.samples)
            if isinstance(process, Profiled):
                profiles.append(process.top(f"SloSink.process, {args.samples:,} samples"))
            else:
                phase.add_run(consumed.seconds, facts, consumed.core_seconds)
    finally:
        sink.close()
    return phase


def _partition_zero(process: Callable[[int, list[RawMessage]], Any]) -> Callable[..., Any]:
    def work(records: list[RawMessage]) -> Any:
        return process(0, records)

    return work


# --- the run -------------------------------------------------------------------------------


def run(args: argparse.Namespace, console: Console) -> tuple[dict[str, Any], list[str]]:
    wall_started = time.perf_counter()
    url = db_url(args.dsn, BENCH_DB)
    postgres_version = recreate_databases(args.dsn, [BENCH_DB])
    console.log(f"database {BENCH_DB} created on PostgreSQL {postgres_version}; migrating")
    with open_store(Settings(database_url=url)) as migrator:
        migrator.migrate()
    profiles: list[str] = []
    with bundled_broker() as broker:
        servers = bootstrap_servers(broker)
        console.log(f"bundled broker at {broker}")
        with progress_bar(console) as progress:
            limit = measure_limit(servers, args, progress)
        console.log(f"limit: {limit.rate:,.0f} messages/s raw consume")
        with progress_bar(console) as progress:
            relay = measure_relay(url, broker, args, progress, profiles)
        console.log(f"relay: {relay.rate:,.0f} events/s")
        with progress_bar(console) as progress:
            ingestion = measure_ingestion(url, servers, args, progress, profiles)
        console.log(f"ingestion: {ingestion.rate:,.0f} messages/s")
        with progress_bar(console) as progress:
            slo = measure_slo(url, servers, args, progress, profiles)
        console.log(f"slo: {slo.rate:,.0f} samples/s")
    result: dict[str, Any] = {
        "limit": limit.report(limit.rate),
        "relay": relay.report(limit.rate),
        "ingestion": ingestion.report(limit.rate),
        "slo": slo.report(limit.rate),
        "repeat": args.repeat,
        "quick": args.quick,
        "broker": "bundled Tansu (memory), same machine",
        "postgres_version": postgres_version,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "wall_s": round(time.perf_counter() - wall_started, 1),
    }
    return result, profiles


UNITS = {"limit": "msg/s", "relay": "ev/s", "ingestion": "msg/s", "slo": "samples/s"}


def print_table(console: Console, r: dict[str, Any]) -> None:
    postgres = r["postgres_version"].split()[0]
    table = Table(
        title=f"regledger streams, median of {r['repeat']}, PostgreSQL {postgres}, "
        f"{r['cpus']} CPUs",
        caption="limit: aiokafka getmany; relay: Relay.run + KafkaSender; ingestion, slo: "
        "consume + Ingestor.ingest / SloSink.process, per worker (core: that call alone)",
    )
    for column in ("phase", "n", "rate", "core", "ratio", "target"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for key, unit in UNITS.items():
        p = r[key]
        target = ""
        if p["target"] is not None:
            target = f"{p['target']:,} {'met' if p['target_met'] else 'MISSED'}"
        core = f"{p['core_rate']:,}" if "core_rate" in p else ""
        table.add_row(
            key, f"{p['n']:,}", f"{p['rate']:,} {unit}", core, f"{p['ratio']:.3f}", target
        )
    console.print(table)


def summary(r: dict[str, Any]) -> str:
    def target(key: str) -> str:
        p = r[key]
        return f"[{'ok' if p['target_met'] else 'MISSED'} >= {p['target']:,}]"

    return (
        f"limit {r['limit']['rate']:,} msg/s; relay {r['relay']['rate']:,} ev/s "
        f"({r['relay']['ratio']}); ingestion {r['ingestion']['rate']:,} msg/s "
        f"({r['ingestion']['ratio']}) {target('ingestion')}; slo {r['slo']['rate']:,} "
        f"samples/s ({r['slo']['ratio']}) {target('slo')}; {r['wall_s']} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args = sized_options(parser, SIZES, argv)
    return run_and_report(args, BENCH_DB, run, print_table, summary)


if __name__ == "__main__":
    sys.exit(main())
