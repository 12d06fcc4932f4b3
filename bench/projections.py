"""Projections benchmark: how fast the read models catch up, and how far they lag under load.

A benchmark, never a timed test: its figures depend on the machine.

One run, on one PostgreSQL server, in a fresh database ``regledger_bench_projections``
(dropped and recreated from the admin DSN, dropped again at the end unless ``--keep``):

* workload (untimed) -- ``--events`` events with the demo's mix: ``console.demo.run_demo``
  (``--seed``, simulated clock) saving ~1,000 aggregates per ``trail.save`` (one append);
  the next ``--rate`` x ``--seconds`` events are kept in memory for the lag phase;
* ``baseline_eps`` -- the limit: ``store.select_records`` in batches of 2,000 and
  ``projections.core.decoder().decode(state)`` of every event;
* ``catchup_eps_median`` / ``catchup_eps_best`` -- ``ProjectionRunner(store, PROJECTIONS)``
  from position 0 to the head, all 12 projections, ``--repeat`` times (between repeats,
  tables and positions are reset in one view-session transaction, then ``VACUUM
  ANALYZE``, untimed); ``ratio_to_baseline`` = median catch-up / median baseline;
* lag -- a runner in ``follow()`` (a thread, its own store) while a separate process
  appends the kept events at ``--rate`` events/s for ``--seconds``, 50 per append,
  paced against a monotonic clock (a late batch goes at once). Every 50 ms the ledger
  head minus the lowest projection position (``lag_events``); for each committed
  batch, now minus the ``recorded_at`` of its last event (``lag_ms``); after the
  appender stops, the lag left (``final_lag_events``) and the time to drain it.

Target: ``catchup_eps_median >= 20,000`` events/s.

Usage: ``python bench/projections.py [--events 200000] [--repeat 3] [--rate 5000]
[--seconds 20] [--seed 7] [--dsn ADMIN_DSN] [--keep] [--json]``; with ``--json`` one JSON
object goes to stdout, progress and the table to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import pickle
import platform
import queue
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository first, then bench/ (common),
    _BENCH = Path(__file__).resolve().parent  # so that this file does not hide `projections`
    sys.path[:] = [str(_BENCH.parent), *(p for p in sys.path if Path(p or ".").resolve() != _BENCH)]
    sys.path.append(str(_BENCH))

import psycopg
from common import add_dsn_option, db_url, drop_databases, progress_bar, recreate_databases
from eventsourcing.persistence import StoredEvent
from rich.console import Console
from rich.table import Table

from console.demo import run_demo
from console.trail import open_trail
from domain.application import AuditTrail
from ledger import Settings, open_store
from ledger.recorders import ChainedApplicationRecorder
from ledger.store import ChainStore
from ledger.views import tracking_name
from projections.catalogue import PROJECTIONS
from projections.core import decoder
from projections.runner import BatchReport, ProjectionRunner

BENCH_DB = "regledger_bench_projections"
SAVE_AGGREGATES = 1_000  # aggregates per trail.save (one append)
RECENT_AGGREGATES = 20_000  # kept in memory for amendments and lifecycle steps
READ_BATCH = 2_000
APPEND_BATCH = 50
SAMPLE_S = 0.05
DRAIN_TIMEOUT_S = 120.0
KEPT_UP_DRAIN_S = 1.0
TARGET_CATCHUP_EPS = 20_000

# Head minus the lowest projection position, in one round trip; notification_id is
# position + 1 (0 after a reset); a projection without a row counts as at -1.
SAMPLE_SQL = """SELECT (SELECT max(position) FROM ledger_events), min(notification_id) - 1,
count(*) FROM ledger_tracking WHERE application_name = ANY(%(names)s)"""


class _Enough(Exception):
    """Every event the bench needs is generated: stop the simulation."""


class Workload:
    """Plays the demo into ``trail``, ~``SAVE_AGGREGATES`` aggregates per append: the first
    ``stored`` events go into the ledger, the next ``held`` are kept as stored events."""

    def __init__(self, trail: AuditTrail, stored: int, held: int, advance: Any) -> None:
        self.trail, self.stored, self.held, self.advance = trail, stored, held, advance
        self.recorded = 0
        self.kept: list[StoredEvent] = []
        self.mix: Counter[str] = Counter()
        self.pending: dict[Any, Any] = {}
        self.recent: OrderedDict[Any, Any] = OrderedDict()
        self._save, self._get = trail.save, trail.repository.get
        trail.save = self.save  # the facade's methods save through here
        trail.repository.get = self.get

    def get(self, aggregate_id: Any, *args: Any, **kwargs: Any) -> Any:
        """Amendments and deployment steps find recent aggregates, saved or not, in memory."""
        found = self.recent.get(aggregate_id)
        return found if found is not None else self._get(aggregate_id, *args, **kwargs)

    def save(self, *aggregates: Any, **_: Any) -> list[Any]:
        for aggregate in aggregates:
            self.pending[aggregate.id] = aggregate
            self.recent[aggregate.id] = aggregate
            self.recent.move_to_end(aggregate.id)
        while len(self.recent) > RECENT_AGGREGATES:
            self.recent.popitem(last=False)
        if len(self.pending) >= SAVE_AGGREGATES:
            self.flush()
        return []

    def flush(self) -> None:
        aggregates = list(self.pending.values())
        self.pending.clear()
        split, before = 0, self.recorded + len(self.kept)
        while split < len(aggregates) and self.recorded < self.stored:
            events = aggregates[split].pending_events
            self.recorded += len(events)
            self.mix.update(type(e).__qualname__.split(".")[0] for e in events)
            split += 1
        if split:
            self._save(*aggregates[:split])  # one append
        to_stored = self.trail.mapper.to_stored_event
        for aggregate in aggregates[split:]:
            self.kept += [to_stored(e) for e in aggregate.collect_events()]
        del self.kept[self.held :]
        self.advance(self.recorded + len(self.kept) - before)
        if len(self.kept) >= self.held:
            raise _Enough


def generate(url: str, args: argparse.Namespace, held: int, console: Console) -> Workload:
    with progress_bar(console) as progress:
        task = progress.add_task("workload: demo events", total=args.events + held)
        trail = open_trail(Settings(database_url=url))
        try:
            workload = Workload(trail, args.events, held, lambda n: progress.advance(task, n))
            with contextlib.suppress(_Enough):  # ~1,700 events a day; stopped when enough
                run_demo(trail, days=(args.events + held) // 1_000 + 5, seed=args.seed)
                workload.flush()
        finally:
            trail.close()
    return workload


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in (0, 100])."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1] if ordered else 0.0


def read_and_decode(store: ChainStore, last: int, advance: Any) -> float:
    """Seconds to read every event in batches of 2,000 and decode each state."""
    decode = decoder().decode
    started = time.perf_counter()
    first = 0
    while first <= last:
        records = store.select_records(first, last, (), READ_BATCH)
        for record in records:
            decode(record.state)
        first = records[-1].position + 1
        advance(len(records))
    return time.perf_counter() - started


def catch_up(store: ChainStore, advance: Any) -> tuple[float, int]:
    """Seconds for all the projections to catch up from a cold start, and rows written."""
    rows = 0
    with ProjectionRunner(store, PROJECTIONS) as runner:
        started = time.perf_counter()
        for report in runner.batches():  # what runner.run() does, with progress
            rows += report.rows
            advance(report.last - report.first + 1)
        return time.perf_counter() - started, rows


def reset(store: ChainStore) -> None:
    with store.view_session() as session, session.transaction():
        for projection in PROJECTIONS:
            session.clear(projection.tables)
            session.reset(tracking_name(projection.name))


def vacuum(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def append_steadily(url: str, path: str, rate: float, ready: Any, go: Any, out: Any) -> None:
    """The appender process: the kept events at ``rate``/s, ``APPEND_BATCH`` per append."""
    with open(path, "rb") as file:
        events: list[StoredEvent] = pickle.load(file)
    settings = Settings(database_url=url)
    store = open_store(settings)
    recorder = ChainedApplicationRecorder(store, max_event_bytes=settings.max_event_bytes)
    chunks = [events[i : i + APPEND_BATCH] for i in range(0, len(events), APPEND_BATCH)]
    interval = APPEND_BATCH / rate
    ready.set()
    go.wait()
    started = time.monotonic()
    late, behind, behind_at = 0, 0.0, 0.0
    for k, chunk in enumerate(chunks):
        delay = started + k * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif -delay > behind:
            behind, behind_at = -delay, k * interval
        late += -delay > interval
        recorder.insert_events(chunk)
    seconds = time.monotonic() - started
    store.close()
    out.put({"events": len(events), "seconds": seconds, "late": late,
             "behind_ms": behind * 1e3, "behind_at_s": behind_at})  # fmt: skip


def measure_lag(
    url: str, kept: list[StoredEvent], args: argparse.Namespace, console: Console
) -> tuple[list[int], list[float], dict[str, Any], int, float | None]:
    """Lag of a following runner while another process appends ``kept`` at ``--rate``."""
    names = [tracking_name(p.name) for p in PROJECTIONS]
    ctx = multiprocessing.get_context("spawn")
    ready, go, out = ctx.Event(), ctx.Event(), ctx.Queue()
    with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as file:
        pickle.dump(kept, file, protocol=pickle.HIGHEST_PROTOCOL)
    appender = ctx.Process(
        target=append_steadily, args=(url, file.name, args.rate, ready, go, out), daemon=True
    )
    appender.start()
    store = open_store(Settings(database_url=url))
    runner = ProjectionRunner(store, PROJECTIONS)
    sampler = psycopg.connect(url, autocommit=True)
    stop, lag_ms, failure = threading.Event(), list[float](), list[BaseException]()

    def on_batch(report: BatchReport) -> None:
        record = store.record_at(report.last)
        assert record is not None
        lag_ms.append((time.time_ns() // 1000 - record.recorded_at_us) / 1e3)

    def lag_now() -> tuple[int, int]:
        head, lowest, count = sampler.execute(SAMPLE_SQL, {"names": names}).fetchone() or (0, 0, 0)
        head = -1 if head is None else head
        return head, head - (lowest if count == len(names) else -1)

    def follow() -> None:
        try:
            runner.follow(stop.is_set, on_batch)
        except BaseException as exc:  # reported after the run, which it ends
            failure.append(exc)
            raise

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    try:
        if not ready.wait(120):
            raise RuntimeError("the appender process did not start")
        while lag_now()[1] > 0 and follower.is_alive():  # the follower starts caught up
            time.sleep(SAMPLE_S)
        lag_ms.clear()
        samples: list[int] = []
        result: dict[str, Any] | None = None
        with progress_bar(console) as progress:
            task = progress.add_task(f"lag: appending at {args.rate:,.0f} ev/s", total=len(kept))
            head0 = lag_now()[0]
            go.set()
            tick = time.monotonic()
            while result is None and follower.is_alive() and appender.exitcode in (None, 0):
                tick += SAMPLE_S
                time.sleep(max(0.0, tick - time.monotonic()))
                head, lag = lag_now()
                samples.append(lag)
                progress.update(task, completed=head - head0)
                with contextlib.suppress(queue.Empty):
                    result = out.get_nowait()
            finished = time.monotonic()
            final = lag = lag_now()[1]
            while lag > 0 and follower.is_alive() and time.monotonic() - finished < DRAIN_TIMEOUT_S:
                time.sleep(0.01)
                lag = lag_now()[1]
            drain_s = time.monotonic() - finished if lag == 0 else None
        if failure or result is None:
            raise RuntimeError(f"runner {failure[:1]}, appender exit code {appender.exitcode}")
    finally:
        stop.set()
        follower.join(timeout=10)
        appender.join(timeout=10)
        runner.close()
        store.close()
        sampler.close()
        os.unlink(file.name)
    return samples, lag_ms, result, final, drain_s


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    wall_started = time.perf_counter()
    url = db_url(args.dsn, BENCH_DB)
    held = round(args.rate * args.seconds)
    postgres_version = recreate_databases(args.dsn, [BENCH_DB])
    console.log(f"database {BENCH_DB} created on PostgreSQL {postgres_version}; migrating")
    with open_store(Settings(database_url=url)) as migrator:
        migrator.migrate()

    started = time.perf_counter()
    workload = generate(url, args, held, console)
    generation_s = time.perf_counter() - started
    n = workload.recorded
    mix = {k: round(v / n * 100, 1) for k, v in workload.mix.most_common()}
    console.log(
        f"{n:,} events recorded and {len(workload.kept):,} kept in {generation_s:.1f} s; "
        "mix: " + ", ".join(f"{k} {v}%" for k, v in mix.items())
    )
    vacuum(url)

    store = open_store(Settings(database_url=url))
    baseline_s: list[float] = []
    catchup_s: list[float] = []
    rows_written = 0
    try:
        last = store.max_position()
        assert last is not None and last + 1 == n, (last, n)
        with progress_bar(console) as progress:
            for i in range(args.repeat):
                task = progress.add_task(f"baseline: read + decode ({i + 1})", total=n)
                baseline_s.append(
                    read_and_decode(store, last, lambda k, t=task: progress.advance(t, k))
                )
                task = progress.add_task(f"catch-up: 12 projections ({i + 1})", total=n)
                seconds, rows_written = catch_up(store, lambda k, t=task: progress.advance(t, k))
                catchup_s.append(seconds)
                if i + 1 < args.repeat:
                    reset(store)
                    vacuum(url)
    finally:
        store.close()
    samples, lag_ms, appended, final, drain_s = measure_lag(url, workload.kept, args, console)

    baseline_eps = n / statistics.median(baseline_s)
    median_eps, best_eps = n / statistics.median(catchup_s), n / min(catchup_s)
    result: dict[str, Any] = {
        "events": n,
        "baseline_eps": round(baseline_eps),
        "catchup_eps_median": round(median_eps),
        "catchup_eps_best": round(best_eps),
        "ratio_to_baseline": round(median_eps / baseline_eps, 3),
        "target_catchup_eps": TARGET_CATCHUP_EPS,
        "rows_written": rows_written,
        "append_rate_eps": round(appended["events"] / appended["seconds"]),
        "appended_events": appended["events"],
        "append_late_batches": appended["late"],
        "append_max_behind_ms": round(appended["behind_ms"], 1),
        "append_max_behind_at_s": round(appended["behind_at_s"], 2),
        "lag_events_p50": percentile(samples, 50),
        "lag_events_p99": percentile(samples, 99),
        "lag_events_max": max(samples, default=0),
        "lag_ms_p50": round(percentile(lag_ms, 50), 1),
        "lag_ms_p99": round(percentile(lag_ms, 99), 1),
        "lag_ms_max": round(max(lag_ms, default=0.0), 1),
        "lag_batches": len(lag_ms),
        "final_lag_events": final,
        "drain_s": None if drain_s is None else round(drain_s, 3),
        "kept_up": drain_s is not None and drain_s <= KEPT_UP_DRAIN_S,
        "target_met": median_eps >= TARGET_CATCHUP_EPS,
        "mix_pct": mix,
        "seconds": {
            "generation": round(generation_s, 1),
            "baseline": [round(s, 3) for s in baseline_s],
            "catchup": [round(s, 3) for s in catchup_s],
            "append": round(appended["seconds"], 3),
        },
        "repeat": args.repeat,
        "rate": args.rate,
        "seed": args.seed,
        "postgres_version": postgres_version,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "wall_s": round(time.perf_counter() - wall_started, 1),
    }
    _print_table(console, result)
    return result


def _print_table(console: Console, r: dict[str, Any]) -> None:
    table = Table(
        title=f"regledger projections, {r['events']:,} events, PostgreSQL {r['postgres_version']}"
    )
    for column in ("figure", "value", "note"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    met = "met" if r["target_met"] else "NOT MET"
    drain = "not drained" if r["drain_s"] is None else f"{r['drain_s']:.2f} s"
    rows = [
        ("baseline: read + decode (median)", f"{r['baseline_eps']:,} ev/s", "the limit"),
        ("catch-up, 12 projections (median)", f"{r['catchup_eps_median']:,} ev/s",
         f">= {TARGET_CATCHUP_EPS:,}, {met}"),
        ("catch-up (best)", f"{r['catchup_eps_best']:,} ev/s", f"of {r['repeat']} runs"),
        ("ratio to baseline", f"{r['ratio_to_baseline']:.3f}", ""),
        ("rows written", f"{r['rows_written']:,}", "per catch-up"),
        ("append rate achieved", f"{r['append_rate_eps']:,} ev/s", f"asked {r['rate']:,.0f}"),
        ("lag events p50 / p99 / max",
         f"{r['lag_events_p50']:,} / {r['lag_events_p99']:,} / {r['lag_events_max']:,}",
         "every 50 ms"),
        ("lag ms p50 / p99 / max",
         f"{r['lag_ms_p50']:,} / {r['lag_ms_p99']:,} / {r['lag_ms_max']:,}",
         f"{r['lag_batches']:,} batches"),
        ("final lag, drain", f"{r['final_lag_events']:,} events", drain),
    ]  # fmt: skip
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _summary(r: dict[str, Any]) -> str:
    return (
        f"catch-up {r['catchup_eps_median']:,} ev/s median, {r['catchup_eps_best']:,} best "
        f"[{'ok' if r['target_met'] else 'MISSED'} >= {TARGET_CATCHUP_EPS:,}] = "
        f"{r['ratio_to_baseline']} of read + decode ({r['baseline_eps']:,}); under "
        f"{r['append_rate_eps']:,} ev/s lag p50 {r['lag_events_p50']:,} ev / "
        f"{r['lag_ms_p50']} ms, p99 {r['lag_events_p99']:,} ev / {r['lag_ms_p99']} ms, "
        f"drained in {r['drain_s']} s [{'kept up' if r['kept_up'] else 'FELL BEHIND'}]; "
        f"{r['wall_s']} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="events in the ledger")
    parser.add_argument("--repeat", type=int, default=3, help="catch-ups from a cold start")
    parser.add_argument("--rate", type=float, default=5_000, help="events/s while following")
    parser.add_argument("--seconds", type=float, default=20, help="how long to append")
    parser.add_argument("--seed", type=int, default=7, help="the demo's seed")
    add_dsn_option(parser)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    if args.events < 1 or args.repeat < 1 or args.rate <= 0 or args.seconds <= 0:
        parser.error("--events, --repeat, --rate and --seconds must be positive")

    console = Console(stderr=True) if args.json else Console()
    try:
        result = run(args, console)
    finally:
        if not args.keep:
            try:
                drop_databases(args.dsn, [BENCH_DB])
            except psycopg.Error as exc:
                Console(stderr=True).print(f"[red]could not drop {BENCH_DB}: {exc}[/red]")
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    console.print(_summary(result), markup=False, highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
