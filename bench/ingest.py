"""Ingest benchmark: the hash-chained recorder against eventsourcing's stock one and COPY.

A benchmark, never a timed test: it is run by hand (or by CI as an informational
job) and its figures depend on the machine. Nothing in ``tests/`` asserts on speed.

One run, on one PostgreSQL server, in a fresh database ``regledger_bench``
(dropped and recreated from the admin DSN, dropped again at the end):

* ``stock_batch_eps``    -- ``eventsourcing.postgres.PostgresApplicationRecorder``
  (table ``stock_events``), ``insert_events`` in batches of ``--batch``;
* ``chained_batch_eps``  -- ``ledger.recorders.ChainedApplicationRecorder`` on
  ``PostgresChainStore`` (table ``ledger_events``), same events, same batches;
* ``copy_limit_rps``     -- the physical limit: the same events pre-sealed with
  ``ledger.chain.seal`` and pre-encoded with ``ledger.postgres.copy_payload``
  (untimed), then only one binary ``COPY`` per batch, each its own transaction, into
  ``copy_events`` (``LIKE ledger_events INCLUDING ALL``: same columns, indexes and
  constraints). It is the server work our recorder does, without the chain, so
  ``ratio_to_copy`` is the share the chain leaves of it;
* ``chained_single_eps`` -- ``min(N // 20, 5000)`` further events appended one at a
  time through the chained recorder, each its own transaction;
* ``verify_eps``         -- ``ledger.verify.verify_ledger`` over the whole chained
  log: the warm-up, the N batch events and the single appends, topped up (untimed,
  through the chained recorder) to ``--verify-events`` (default 1,000,000), since a
  verifier's speed matters at scale and worker processes pay off only there.

The N events (5 per aggregate, consecutive versions, ~250-byte JSON order states,
real importable topics) are generated once from a seeded ``random.Random`` and fed
to every contender; contenders are interleaved batch by batch, in rotating order,
each batch timed on its own with ``time.perf_counter``. Two batches of separate
warm-up events go through each contender first, untimed, so connection setup,
statement preparation and the topic cache are not measured.

Targets: ``chained_batch_eps >= 50,000`` ev/s, i.e. ``ratio_batch >= 6`` against the
~7,700 ev/s measured for the stock recorder; ``ratio_to_copy >= 0.75``;
``verify_eps >= 500,000``.

Usage::

    python bench/ingest.py --events 200000 [--batch 500] [--dsn ADMIN_DSN] [--json]

``--dsn`` defaults to ``$REGLEDGER_TEST_DSN``, else
``postgresql://postgres@127.0.0.1:5432/postgres``. With ``--json`` exactly one JSON
object goes to stdout; progress and the table go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from common import (
    Contender,
    add_dsn_option,
    db_parts,
    db_url,
    drop_databases,
    progress_bar,
    recreate_databases,
)
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ledger import Settings, open_store
from ledger.chain import ChainHead, seal
from ledger.postgres import PostgresChainStore, copy_payload
from ledger.recorders import ChainedApplicationRecorder
from ledger.validation import prepare_batch
from ledger.verify import verify_ledger

BENCH_DB = "regledger_bench"
EVENTS_PER_AGGREGATE = 5
WARMUP_BATCHES = 2
SEED = 20_260_101
MAX_EVENT_BYTES = 1_048_576

TARGET_CHAINED_EPS = 50_000
TARGET_RATIO_BATCH = 6.0
TARGET_RATIO_TO_COPY = 0.75
TARGET_VERIFY_EPS = 500_000

TOPIC_CREATED = "eventsourcing.domain:Aggregate.Created"
TOPIC_EVENT = "eventsourcing.domain:Aggregate.Event"

COPY_SQL = (
    "COPY copy_events (position, originator_version, recorded_at, originator_id, topic, "
    "state, prev_hash, hash) FROM STDIN (FORMAT BINARY)"
)

_VENUES = ("XETR", "XPAR", "XLON", "XAMS", "XMIL", "BATE", "CHIX", "TRQX")
_CURRENCIES = ("EUR", "GBP", "USD", "CHF")
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_KINDS = ("NEW", "AMEND", "PARTIAL_FILL", "FILL", "CANCEL")


# --- events ---------------------------------------------------------------------------


class EventFactory:
    """Deterministic, realistic order events: 5 consecutive versions per aggregate."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.clock_us = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z

    def _code(self, n: int) -> str:
        return "".join(self.rng.choice(_ALNUM) for _ in range(n))

    def events(self, count: int) -> list[StoredEvent]:
        rng = self.rng
        out: list[StoredEvent] = []
        while len(out) < count:
            originator_id = UUID(int=rng.getrandbits(128), version=4)
            isin = rng.choice(("DE", "FR", "GB", "NL", "IT", "US")) + self._code(10)
            lei = self._code(20)
            venue = rng.choice(_VENUES)
            currency = rng.choice(_CURRENCIES)
            price = rng.randint(100, 500_000)
            qty = rng.randint(1, 10_000)
            trader = f"T{rng.randint(1000, 9999)}"
            for version in range(1, min(EVENTS_PER_AGGREGATE, count - len(out)) + 1):
                self.clock_us += rng.randint(50, 5_000)
                price += rng.randint(-50, 50)
                state = {
                    "kind": _KINDS[version - 1],
                    "isin": isin,
                    "lei": lei,
                    "venue": venue,
                    "side": "BUY" if price % 2 else "SELL",
                    "price": f"{price / 100:.2f}",
                    "currency": currency,
                    "qty": qty,
                    "filled": qty * (version - 1) // (EVENTS_PER_AGGREGATE - 1),
                    "trader": trader,
                    "client_order_id": self._code(12),
                    "timestamp": _iso(self.clock_us),
                }
                out.append(
                    StoredEvent(
                        originator_id=originator_id,
                        originator_version=version,
                        topic=TOPIC_CREATED if version == 1 else TOPIC_EVENT,
                        state=json.dumps(state, separators=(",", ":")).encode(),
                    )
                )
        return out


def _iso(micros: int) -> str:
    seconds, us = divmod(micros, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{us:06d}+00:00"


def batches(events: Sequence[StoredEvent], size: int) -> list[Sequence[StoredEvent]]:
    return [events[i : i + size] for i in range(0, len(events), size)]


# --- database -------------------------------------------------------------------------


# --- contenders -----------------------------------------------------------------------


def eps(self) -> float:
    return self.events / self.seconds if self.seconds > 0 else 0.0


def presealed_payloads(
    warmup: Sequence[Sequence[StoredEvent]], timed: Sequence[Sequence[StoredEvent]]
) -> tuple[list[bytes], list[bytes]]:
    """Binary COPY payloads of the warm-up and timed batches, sealed as one chain."""
    head = ChainHead()
    out: list[list[bytes]] = [[], []]
    for target, groups in zip(out, (warmup, timed), strict=True):
        for batch in groups:
            prepared = prepare_batch(batch, max_event_bytes=MAX_EVENT_BYTES, known_topics=None)
            sealed = seal(head, prepared, time.time_ns() // 1000)
            head = sealed.head
            target.append(copy_payload(sealed.records, [e.body for e in prepared]))
    return out[0], out[1]


def copy_batch(conn: psycopg.Connection[Any], payload: bytes) -> None:
    with conn.transaction(), conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
        copy.write(payload)


# --- run ------------------------------------------------------------------------------


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    wall_started = time.perf_counter()
    n, size = args.events, args.batch
    single_n = min(n // 20, 5000)
    url, parts = db_url(args.dsn, BENCH_DB), db_parts(args.dsn)

    console.log(f"generating {n:,} + warm-up + {single_n:,} single events (seed {SEED})")
    factory = EventFactory(SEED)
    topup_factory = EventFactory(SEED + 1)  # more events for the verify log, untimed
    warm_events = factory.events(WARMUP_BATCHES * size)
    timed_events = factory.events(n)
    single_events = factory.events(single_n)
    state_bytes = sum(len(e.state) for e in timed_events) / max(n, 1)
    warm_batches, timed_batches = batches(warm_events, size), batches(timed_events, size)

    console.log("pre-sealing and encoding the COPY payloads (untimed)")
    copy_warm, copy_timed = presealed_payloads(warm_batches, timed_batches)

    postgres_version = recreate_databases(args.dsn, [BENCH_DB])
    console.log(f"database {BENCH_DB} created on PostgreSQL {postgres_version}; migrating")
    with open_store(Settings(database_url=url)) as migrator:
        migrator.migrate()

    datastore: PostgresDatastore | None = None
    store: PostgresChainStore | None = None
    copy_conn: psycopg.Connection[Any] | None = None
    try:
        datastore = PostgresDatastore(
            dbname=BENCH_DB,
            host=parts["host"],
            port=parts["port"],
            user=parts["user"],
            password=parts["password"],
        )
        stock = PostgresApplicationRecorder(datastore, events_table_name="stock_events")
        stock.create_table()

        store = PostgresChainStore(Settings(database_url=url))
        chained = ChainedApplicationRecorder(store, max_event_bytes=MAX_EVENT_BYTES)

        copy_conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        copy_conn.execute("CREATE TABLE copy_events (LIKE ledger_events INCLUDING ALL)")

        # Warm-up, untimed: connections, prepared statements, the topic cache.
        for batch in warm_batches:
            stock.insert_events(batch)
            chained.insert_events(batch)
        for payload in copy_warm:
            copy_batch(copy_conn, payload)

        conn = copy_conn
        contenders = [
            Contender("stock", lambda i: stock.insert_events(timed_batches[i])),
            Contender("chained", lambda i: chained.insert_events(timed_batches[i])),
            Contender("copy limit", lambda i: copy_batch(conn, copy_timed[i])),
        ]
        perf = time.perf_counter
        with progress_bar(console) as progress:
            task = progress.add_task("batches (stock, chained, copy)", total=len(timed_batches))
            for i, batch in enumerate(timed_batches):
                for k in range(len(contenders)):  # rotate the order batch by batch
                    contender = contenders[(i + k) % len(contenders)]
                    started = perf()
                    contender.insert(i)
                    contender.seconds += perf() - started
                    contender.events += len(batch)
                progress.advance(task)

            task = progress.add_task("single appends (chained)", total=single_n)
            single_seconds = 0.0
            for event in single_events:
                started = perf()
                chained.insert_events([event])
                single_seconds += perf() - started
                progress.advance(task)

            # Verify is measured on a log of --verify-events (default 1,000,000): a
            # verifier's speed matters at scale, where worker processes pay off.
            topup = max(0, args.verify_events - (len(warm_events) + n + single_n))
            task = progress.add_task("top up the log for verify (untimed)", total=topup)
            for start in range(0, topup, 5_000):
                count = min(5_000, topup - start)
                chained.insert_events(topup_factory.events(count))
                progress.advance(task, count)

            task = progress.add_task("verify", total=None)

            def on_progress(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            report = verify_ledger(Settings(database_url=url), progress=on_progress)
    finally:
        if copy_conn is not None:
            copy_conn.close()
        if store is not None:
            store.close()
        if datastore is not None:
            datastore.close()

    assert report.ok, f"verify found a fault: {report.fault}"
    expected = max(len(warm_events) + n + single_n, args.verify_events)
    assert report.checked == expected, (report.checked, expected)

    stock_c, chained_c, copy_c = contenders
    single_eps = single_n / single_seconds if single_seconds > 0 else 0.0
    verify_eps = report.checked / report.elapsed_s if report.elapsed_s > 0 else 0.0
    result: dict[str, Any] = {
        "stock_batch_eps": round(stock_c.eps),
        "chained_batch_eps": round(chained_c.eps),
        "ratio_batch": _ratio(chained_c.eps, stock_c.eps),
        "copy_limit_rps": round(copy_c.eps),
        "ratio_to_copy": _ratio(chained_c.eps, copy_c.eps),
        "chained_single_eps": round(single_eps),
        "verify_eps": round(verify_eps),
        "events": n,
        "batch": size,
        "single_events": single_n,
        "warmup_events": len(warm_events),
        "verify_events": report.checked,
        "verify_jobs": report.jobs,
        "mean_state_bytes": round(state_bytes),
        "seconds": {
            "stock": round(stock_c.seconds, 3),
            "chained": round(chained_c.seconds, 3),
            "copy_limit": round(copy_c.seconds, 3),
            "chained_single": round(single_seconds, 3),
            "verify": round(report.elapsed_s, 3),
        },
        "targets_met": {
            "chained_batch_eps": chained_c.eps >= TARGET_CHAINED_EPS,
            "ratio_batch": _ratio(chained_c.eps, stock_c.eps) >= TARGET_RATIO_BATCH,
            "ratio_to_copy": _ratio(chained_c.eps, copy_c.eps) >= TARGET_RATIO_TO_COPY,
            "verify_eps": verify_eps >= TARGET_VERIFY_EPS,
        },
        "python": platform.python_version(),
        "postgres_version": postgres_version,
        "cpus": os.cpu_count(),
        "wall_s": round(time.perf_counter() - wall_started, 1),
    }
    _print_table(console, contenders, single_n, single_seconds, report, result)
    return result


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b > 0 else 0.0


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _print_table(
    console: Console,
    contenders: list[Contender],
    single_n: int,
    single_seconds: float,
    report: Any,
    result: dict[str, Any],
) -> None:
    stock_eps = contenders[0].eps
    copy_eps = contenders[2].eps
    table = Table(
        title=f"regledger ingest, batch {result['batch']}, PostgreSQL {result['postgres_version']}"
    )
    table.add_column("contender")
    table.add_column("events", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("events/s", justify="right")
    table.add_column("ratio (vs stock)", justify="right")
    table.add_column("ratio (vs copy)", justify="right")
    rows: list[tuple[str, int, float]] = [(c.name, c.events, c.seconds) for c in contenders]
    rows.append(("chained single", single_n, single_seconds))
    rows.append((f"verify ({report.jobs} jobs)", report.checked, report.elapsed_s))
    for name, events, seconds in rows:
        eps = events / seconds if seconds > 0 else 0.0
        table.add_row(
            name,
            f"{events:,}",
            f"{seconds:.3f}",
            f"{eps:,.0f}",
            f"{_ratio(eps, stock_eps):.3f}" if not name.startswith("verify") else "",
            f"{_ratio(eps, copy_eps):.3f}" if not name.startswith("verify") else "",
        )
    console.print(table)


def _summary(result: dict[str, Any]) -> str:
    met = result["targets_met"]

    def mark(key: str) -> str:
        return "ok" if met[key] else "MISSED"

    return (
        f"chained {result['chained_batch_eps']:,} ev/s = {result['ratio_batch']}x stock "
        f"({result['stock_batch_eps']:,}) [{mark('ratio_batch')}], "
        f"{result['ratio_to_copy']} of COPY ({result['copy_limit_rps']:,}) "
        f"[{mark('ratio_to_copy')}]; single {result['chained_single_eps']:,} ev/s; "
        f"verify {result['verify_eps']:,} ev/s on {result['verify_jobs']} jobs "
        f"[{mark('verify_eps')}]; {result['wall_s']} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per contender")
    parser.add_argument("--batch", type=int, default=500, help="events per insert_events call")
    add_dsn_option(parser)
    parser.add_argument(
        "--verify-events",
        type=int,
        default=1_000_000,
        help="log size verify is timed on (the chained log is topped up, untimed)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    if args.events < 1 or args.batch < 1:
        parser.error("--events and --batch must be positive")

    console = Console(stderr=True) if args.json else Console()
    try:
        result = run(args, console)
    finally:
        try:
            drop_databases(args.dsn, [BENCH_DB])
        except psycopg.Error as exc:
            Console(stderr=True).print(f"[red]could not drop {BENCH_DB}: {exc}[/red]")
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    console.print(_summary(result), markup=False)  # its [ok] tags are text, not markup
    return 0


if __name__ == "__main__":
    sys.exit(main())
