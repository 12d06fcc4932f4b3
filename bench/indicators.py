"""Indicators benchmark: ticks/s one indicators worker turns into bars and snapshots, against
the raw consume rate of the same ticks.

A benchmark, never a timed test: its figures depend on the machine.

One run, on the bundled broker (``streams.broker.bundled_broker``: Tansu, memory-only, a
fresh one per run, on this machine) and one PostgreSQL server, in a fresh migrated
database ``regledger_bench_indicators`` (dropped and recreated from the admin DSN, dropped
again at the end unless ``--keep``).

The workload (untimed): ``--ticks`` ticks per repeat on ``market.ticks`` (one partition),
``--symbols`` symbols at ``--per-second`` ticks a second each in event time, in event-time
order, each tick's symbol drawn at random (so each 1 s bar holds ~``--per-second`` ticks);
per symbol a seeded random walk of the last price (cents), bid <= last <= ask, integer
sizes. A repeat covers ``ticks / (symbols * per_second)`` seconds of event time (500 s by
default) and the next repeat the seconds after it, read by the same core at the offsets
after it: no tick is a replay, no bar is stored already. How many 1 s and 1 min bars each
repeat closes is counted from the generated ticks alone (a bar closes at its symbol's
first tick of a later second or minute); every batch of every run must come out with
skipped == 0 and no rejection, and each run with exactly that many bars, snapshots and rows
written, or the bench stops: its rate would not be the one the README quotes.

* ``limit`` -- raw aiokafka consumption of the first ``--ticks`` ticks: an
  ``AIOKafkaConsumer`` (partition 0 assigned, seek to the beginning, ``getmany`` of up to
  100,000 records at a time) until every one is in, ``--repeat`` times; ticks/s;
* ``indicators`` -- what the agent (``streams.agents.indicators_app``) does, per worker:
  batches of ``streams.agents.TICK_BATCH`` ticks, fetched one batch ahead, each handed to
  ``IndicatorCore.process`` (decode, 1 s and 1 min bars, the 107 TA-Lib indicators of
  ``IndicatorConfig.load()`` per closed bar, one ``indicator_values`` transaction per
  batch) in a worker thread of its own; then, on the event loop, each snapshot's canonical
  bytes sent to ``indicators.values`` (key: the symbol) and the changelog entries the
  agent's table writes (one per closed bar, one per touched symbol's open bars, a
  tombstone per expired bar) sent to a changelog topic, with one ``AIOKafkaProducer`` set
  as the worker's (acks all; batches of up to 256 KiB, lingering at most 2 ms:
  ``streams.agents.INDICATORS_PRODUCER``), without waiting for the acks (as the
  agent; Faust flushes before committing offsets), and every send flushed before the run's
  clock stops; ticks/s, ``ratio`` = rate / limit.

``core_rate`` is the same count over the seconds inside ``IndicatorCore.process`` alone
(in its thread), ``publish_seconds`` the seconds spent publishing (and the final flush):
the gap to ``rate`` is what consuming and publishing add. Rates are the median of
``--repeat`` runs.

Target (per worker): >= 50,000 ticks/s.

``--quick`` is a CI-size run; ``--profile`` adds one untimed, profiled pass on ticks of its
own (the next event seconds) and prints to stderr where its time goes: cProfile of
``IndicatorCore.process`` in its thread, and of the event loop's thread (fetching, the
RawMessages, publishing).

Usage: ``python bench/indicators.py [--quick] [--repeat 3] [--ticks 500000] [--symbols 20]
[--per-second 50] [--dsn ADMIN_DSN] [--keep] [--profile] [--json]``; ``--dsn`` defaults to
``$REGLEDGER_TEST_DSN``, else ``postgresql://postgres@127.0.0.1:5432/postgres``. Progress
goes to stderr, the table to stdout; with ``--json`` exactly one JSON object goes to stdout
and the table to stderr: ``rate``, ``ratio``, ``target``, ``target_met``, ``n``, ``runs``
and ``seconds`` per run, ``core_rate``, ``publish_seconds``, the bars, snapshots and
messages published per run, ``limit`` (``rate``, ``runs``, ...), then the workload and the
run's context (PostgreSQL version, CPUs, load average, Python, wall seconds).

Example::

    python bench/indicators.py --quick --json
"""

from __future__ import annotations

import argparse
import cProfile
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
    _BENCH = Path(__file__).resolve().parent  # kafka_bench), so bench/streams.py does not
    sys.path[:] = [str(_BENCH.parent), *(p for p in sys.path if Path(p or ".").resolve() != _BENCH)]
    sys.path.append(str(_BENCH))  # hide the `streams` package

from aiokafka import AIOKafkaProducer
from common import db_url, progress_bar, recreate_databases, run_and_report, sized_options
from kafka_bench import Phase, Profiled, consume_into, measure_raw, produce, profile_top, run_async
from rich.console import Console
from rich.table import Table

from ledger import Settings, open_store
from streams.agents import BARS_TABLE, INDICATORS_PRODUCER, TICK_BATCH
from streams.agents import _closed_key as closed_key  # the agent's own changelog keys
from streams.agents import _open_key as open_key
from streams.broker import bundled_broker
from streams.indicator_worker import IndicatorBatch, IndicatorCore
from streams.indicators import IndicatorConfig
from streams.messages import RawMessage
from streams.settings import bootstrap_servers
from streams.topics import INDICATOR_VALUES, MARKET_TICKS, ensure_topics

BENCH_DB = "regledger_bench_indicators"
CHANGELOG = f"regledger-bench.indicators-{BARS_TABLE}-changelog"  # Faust's name for it
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # event time of the first tick
SEED = 20_260_302
VOLATILITY = 1e-4  # log-return per tick, standard deviation
TARGET = 50_000

DEFAULTS = {  # name: (full, --quick)
    "ticks": (500_000, 50_000),
    "symbols": (20, 20),
    "per_second": (50, 50),
}


# --- workload -------------------------------------------------------------------------------


class TickTape:
    """Market ticks in event-time order, run after run, and the bars each run closes.

    ``symbols`` symbols at ``per_second`` ticks a second each, on average: tick ``k`` is at
    ``START + k / (symbols * per_second)`` s, its symbol drawn at random.

    >>> values, closed = TickTape(2, 10, random.Random(1)).take(60)
    >>> len(values), closed  # 3 s of event time: each symbol's first two 1 s bars closed
    (60, {'1s': 4, '1m': 0})
    """

    def __init__(self, symbols: int, per_second: int, rng: random.Random) -> None:
        self.rng = rng
        self.symbols = [f"XBENCH{i:06d}" for i in range(symbols)]
        self.price = [rng.randrange(5_000, 50_000) / 100 for _ in range(symbols)]
        self.step_us = 1_000_000 / (symbols * per_second)
        self.start_us = int(START.timestamp()) * 1_000_000
        self.next = 0  # the next tick's index
        self.second = [-1] * symbols  # each symbol's open 1 s bar (its epoch second)
        self.minute = [-1] * symbols  # and its open 1 min bar (its epoch minute)

    def take(self, count: int) -> tuple[list[bytes], dict[str, int]]:
        """The next ``count`` tick values, and how many 1 s and 1 min bars they close."""
        rng, epoch = self.rng, datetime(1970, 1, 1)
        closed = {"1s": 0, "1m": 0}
        values = []
        for k in range(self.next, self.next + count):
            s = rng.randrange(len(self.symbols))
            self.price[s] *= math.exp(rng.gauss(0.0, VOLATILITY))
            last = max(1, round(self.price[s] * 100))  # cents, never below one
            bid, ask = last - rng.randint(0, 2), last + rng.randint(0, 2)
            at_us = self.start_us + int(k * self.step_us)
            second = at_us // 1_000_000
            minute = second // 60
            if second > self.second[s] >= 0:
                closed["1s"] += 1
            if minute > self.minute[s] >= 0:
                closed["1m"] += 1
            self.second[s], self.minute[s] = second, minute
            moment = (epoch + timedelta(microseconds=at_us)).isoformat(timespec="microseconds")
            size = max(1, round(rng.lognormvariate(4.0, 1.0)))
            values.append(
                f'{{"symbol":"{self.symbols[s]}","bid":{max(bid, 1) / 100},"ask":{ask / 100},'
                f'"last":{last / 100},"size":{size},"time":"{moment}Z"}}'.encode()
            )
        self.next += count
        return values, closed


# --- the worker -----------------------------------------------------------------------------


class Publisher:
    """What the agent does with a batch after its core: each snapshot's canonical bytes (as
    the core encoded them) to ``indicators.values``, then the table's changelog entries,
    all sent without waiting (Faust flushes them before it commits the offsets; the bench
    flushes at the end of the run)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.values = 0
        self.changelog = 0

    async def __call__(self, batch: IndicatorBatch) -> None:
        send = self.producer.send
        for s, data in zip(batch.snapshots, batch.canonical, strict=True):
            await send(INDICATOR_VALUES, key=s.symbol.encode(), value=data)
        self.values += len(batch.snapshots)
        table = 0
        for bar in batch.expired:  # the table's pop: a tombstone
            await send(CHANGELOG, key=closed_key(bar), value=None)
            table += 1
        for bar in batch.bars:
            await send(CHANGELOG, key=closed_key(bar), value=bar.to_json().encode())
            table += 1
        for symbol, (offset, bars) in batch.open_bars.items():
            entry = {"offset": offset, "bars": [b.to_json() for b in bars]}
            await send(CHANGELOG, key=open_key(symbol), value=json.dumps(entry).encode())
            table += 1
        self.changelog += table


async def work_through(
    servers: str,
    first: int,
    count: int,
    process: Callable[[list[RawMessage]], Any],
    advance: Callable[[int], None],
) -> tuple[Any, Publisher]:
    """One worker run over offsets ``first ..`` of the ticks: consume, process, publish."""
    producer = AIOKafkaProducer(  # as the worker's producer is set (streams.agents)
        bootstrap_servers=servers,
        acks=-1,
        enable_idempotence=False,  # Tansu has no InitProducerId
        linger_ms=round(INDICATORS_PRODUCER["producer_linger"] * 1000),
        max_batch_size=INDICATORS_PRODUCER["producer_max_batch_size"],
        max_request_size=1_000_000,
    )
    await producer.start()
    try:
        publisher = Publisher(producer)
        consumed = await consume_into(
            servers, MARKET_TICKS, first, count, TICK_BATCH, process, advance, publisher
        )
        flushing = time.perf_counter()
        await producer.flush()  # every snapshot on the broker before the run's clock stops
        flushed = time.perf_counter() - flushing
        consumed.seconds += flushed
        consumed.after_seconds += flushed
        return consumed, publisher
    finally:
        await producer.stop()


def check_run(
    outcomes: Sequence[IndicatorBatch], count: int, closed: dict[str, int]
) -> dict[str, int]:
    """What a run did, once it is checked: every tick in a bar, none skipped or rejected,
    the bars the ticks close, one snapshot each, every one written."""
    ticks = sum(b.ticks for b in outcomes)
    skipped = sum(b.skipped for b in outcomes)
    rejected = [r for b in outcomes for r in b.rejected]
    bars = {tf: sum(1 for b in outcomes for bar in b.bars if bar.timeframe == tf) for tf in closed}
    snapshots = sum(len(b.snapshots) for b in outcomes)
    written = sum(b.written for b in outcomes)
    conflicts = sum(len(b.conflicts) for b in outcomes)
    expected = sum(closed.values())
    if (
        ticks != count
        or skipped
        or rejected
        or bars != closed
        or not snapshots == written == expected
        or conflicts
    ):
        first = f"{rejected[0].field}: {rejected[0].error}" if rejected else "none rejected"
        raise RuntimeError(
            f"the indicators core took {ticks:,} of {count:,} ticks ({skipped:,} skipped as "
            f"replays, {len(rejected):,} rejected; first: {first}); closed bars {bars}, the "
            f"ticks close {closed}; {snapshots:,} snapshots, {written:,} written, "
            f"{conflicts:,} conflicts: check the workload's event times and the fresh database"
        )
    return {
        "bars_1s": bars["1s"],
        "bars_1m": bars["1m"],
        "bars": expected,
        "snapshots": snapshots,
        "batches": len(outcomes),
    }


def measure(
    url: str, servers: str, args: argparse.Namespace, console: Console, profiles: list[str]
) -> tuple[Phase, Phase]:
    """The limit and the indicators phase (and the profiled pass): (limit, indicators)."""
    runs = args.repeat + (1 if args.profile else 0)
    tape = TickTape(args.symbols, args.per_second, random.Random(SEED))
    ensure_topics(f"kafka://{servers}", [MARKET_TICKS, INDICATOR_VALUES, CHANGELOG])
    closes: list[dict[str, int]] = []
    value_bytes = 0
    with progress_bar(console) as progress:
        for i in range(runs):
            task = progress.add_task(f"generate ticks ({i + 1} of {runs})", total=1)
            values, closed = tape.take(args.ticks)
            progress.advance(task)
            closes.append(closed)
            value_bytes += sum(map(len, values))
            produce(servers, MARKET_TICKS, values, progress, label=f"produce ({i + 1} of {runs})")
            del values
        limit = measure_raw(servers, MARKET_TICKS, args.ticks, args.repeat, progress)
    limit.extra["value_bytes"] = round(value_bytes / (args.ticks * runs))
    console.log(f"limit: {limit.rate:,.0f} ticks/s raw consume")

    config = IndicatorConfig.load()
    phase = Phase(args.ticks, target=TARGET)
    phase.extra["publish_seconds"] = []
    with (
        IndicatorCore(Settings(database_url=url), config) as core,
        progress_bar(console) as progress,
    ):
        for i in range(runs):
            profiled = i == args.repeat
            task = progress.add_task(
                "indicators: profiled" if profiled else f"indicators ({i + 1})", total=args.ticks
            )
            process: Callable[[list[RawMessage]], Any] = core.process
            loop = cProfile.Profile()
            if profiled:
                process = Profiled(core.process)
                loop.enable()
            consumed, publisher = run_async(
                work_through(
                    servers, i * args.ticks, args.ticks, process,
                    lambda k, t=task: progress.advance(t, k),
                )
            )  # fmt: skip
            loop.disable()
            facts = check_run(consumed.outcomes, args.ticks, closes[i])
            facts |= {"published": publisher.values, "changelog": publisher.changelog}
            if isinstance(process, Profiled):
                what = f"{args.ticks:,} ticks"
                profiles.append(process.top(f"IndicatorCore.process (its thread), {what}"))
                profiles.append(profile_top(loop, f"the event loop's thread, {what}"))
            else:
                phase.add_run(consumed.seconds, facts, consumed.core_seconds)
                phase.extra["publish_seconds"].append(round(consumed.after_seconds, 3))
    return limit, phase


# --- the run --------------------------------------------------------------------------------


def run(args: argparse.Namespace, console: Console) -> tuple[dict[str, Any], list[str]]:
    wall_started = time.perf_counter()
    load_before = os.getloadavg()
    url = db_url(args.dsn, BENCH_DB)
    postgres_version = recreate_databases(args.dsn, [BENCH_DB])
    console.log(f"database {BENCH_DB} created on PostgreSQL {postgres_version}; migrating")
    with open_store(Settings(database_url=url)) as migrator:
        migrator.migrate()
    profiles: list[str] = []
    with bundled_broker() as broker:
        servers = bootstrap_servers(broker)
        console.log(f"bundled broker at {broker}")
        limit, phase = measure(url, servers, args, console, profiles)
    console.log(f"indicators: {phase.rate:,.0f} ticks/s per worker")
    specs = IndicatorConfig.load().specs_for(None)
    result: dict[str, Any] = phase.report(limit.rate)
    result |= {
        "limit": limit.report(limit.rate),
        "symbols": args.symbols,
        "per_second": args.per_second,
        "event_seconds": round(args.ticks / (args.symbols * args.per_second), 3),
        "batch": TICK_BATCH,
        "indicators": len(specs),
        "values_per_snapshot": sum(len(s.value_names) for s in specs),
        "repeat": args.repeat,
        "quick": args.quick,
        "broker": "bundled Tansu (memory), same machine",
        "postgres_version": postgres_version,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "python": platform.python_version(),
        "wall_s": round(time.perf_counter() - wall_started, 1),
    }
    return result, profiles


def _median(values: Sequence[int]) -> int:
    return sorted(values)[len(values) // 2]


def print_table(console: Console, r: dict[str, Any]) -> None:
    postgres = r["postgres_version"].split()[0]
    table = Table(
        title=f"regledger indicators, median of {r['repeat']}, PostgreSQL {postgres}, "
        f"{r['cpus']} CPUs",
        caption=f"{r['symbols']} symbols x {r['per_second']} ticks/s, {r['event_seconds']:,} s "
        f"of event time a run: {_median(r['bars_1s']):,} 1 s + {_median(r['bars_1m']):,} 1 min "
        f"bars, {r['indicators']} indicators each. limit: aiokafka getmany; indicators: consume "
        "+ IndicatorCore.process + publish (acked), per worker; core: process alone",
    )
    for column in ("phase", "n", "ticks/s", "ratio", "target"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    limit = r["limit"]
    verdict = f"{r['target']:,} {'met' if r['target_met'] else 'MISSED'}"
    table.add_row("limit", f"{limit['n']:,}", f"{limit['rate']:,}", "1.000", "")
    table.add_row("indicators", f"{r['n']:,}", f"{r['rate']:,}", f"{r['ratio']:.3f}", verdict)
    core_ratio = f"{r['core_rate'] / limit['rate']:.3f}"
    table.add_row("core only", f"{r['n']:,}", f"{r['core_rate']:,}", core_ratio, "")
    console.print(table)


def summary(r: dict[str, Any]) -> str:
    verdict = "ok" if r["target_met"] else "MISSED"
    return (
        f"limit {r['limit']['rate']:,} ticks/s; indicators {r['rate']:,} ticks/s per worker "
        f"({r['ratio']}) [{verdict} >= {r['target']:,}]; core {r['core_rate']:,} ticks/s; "
        f"{_median(r['bars']):,} bars and {_median(r['snapshots']):,} snapshots a run; "
        f"load {r['load_average'][0]}; {r['wall_s']} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args = sized_options(parser, DEFAULTS, argv)
    return run_and_report(args, BENCH_DB, run, print_table, summary)


if __name__ == "__main__":
    sys.exit(main())
