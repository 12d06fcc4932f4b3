"""``regledger projections ...`` and ``regledger lineage``: the read models and a trade's trail.

The group in ``console/cli.py`` adds them with ``cli.add_command(...)``.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table

from ledger import ChainStore, Settings, open_store
from ledger.settings import redact_url
from projections.catalogue import PROJECTIONS, by_name
from projections.core import ProjectionError, plain
from projections.lineage import Lineage, lineage
from projections.rebuild import RebuildReport, rebuild, replace_live
from projections.runner import BatchReport, ProjectionRunner
from streams.indicator_worker import stored_snapshots

from .errors import CommandError
from .options import load_settings, require_schema
from .progress import progress_bar

__all__ = ["catch_up", "lineage_command", "projections_group"]

err = Console(stderr=True)


@contextmanager
def _store() -> Iterator[tuple[Settings, ChainStore]]:
    settings = load_settings()
    require_schema(settings)
    with open_store(settings) as store:
        try:
            yield settings, store
        except ProjectionError as exc:
            raise CommandError(str(exc)) from exc


def catch_up(store: ChainStore, names: tuple[str, ...] = ()) -> tuple[int, int]:
    """Apply every event recorded so far to the projections; return (events, rows)."""
    events = rows = 0
    with ProjectionRunner(store, by_name(list(names))) as runner:
        found = runner.status()
        head, lag = (found[0].head, max(s.lag for s in found)) if found else (None, 0)
        start = -1 if head is None else head - lag  # the position the furthest behind is at
        with _bar("projecting") as advance:
            for report in runner.batches(head):
                events = max(events, report.last - start)
                rows += report.rows
                if advance is not None:
                    advance(events, lag)
    return events, rows


@click.group("projections")
def projections_group() -> None:
    """Read models of the ledger: status, run, rebuild.

    Each projection's rows and its tracking position commit in one transaction, so an
    event is applied exactly once, whatever stops a runner.

    Example:

        regledger projections run && regledger projections status
    """


@projections_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(as_json: bool) -> None:
    """Each projection's position, the ledger head and the lag between them.

    Example:

        regledger projections status --json
    """
    with _store() as (settings, store), ProjectionRunner(store, PROJECTIONS) as runner:
        found = runner.status()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {"projection": s.name, "position": s.position, "head": s.head, "lag": s.lag}
                    for s in found
                ],
                indent=2,
            )
        )
        return
    table = Table(title=f"projections of {redact_url(settings.database_url)}", box=box.SIMPLE)
    for column, justify in (("projection", "left"), ("position", "right"), ("lag", "right"),
                            ("description", "left")):  # fmt: skip
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    descriptions = {p.name: p.description for p in PROJECTIONS}
    for s in found:
        position = "-" if s.position is None else f"{s.position:,}"
        table.add_row(s.name, position, f"{s.lag:,}", descriptions[s.name])
    Console().print(table)
    head = found[0].head if found else None
    click.echo(f"head: {'empty log' if head is None else f'position {head:,}'}")


@projections_group.command("run")
@click.option("--follow", is_flag=True, help="Keep applying new events until interrupted.")
@click.option("--only", "names", multiple=True, help="Only this projection (repeatable).")
def run(follow: bool, names: tuple[str, ...]) -> None:
    """Apply the events recorded since each projection's position, then stop (or follow).

    Example:

        regledger projections run --follow
    """
    with _store() as (_, store):
        by_name(list(names))  # an unknown name fails before any work
        started = time.perf_counter()
        events, rows = catch_up(store, names)
        elapsed = time.perf_counter() - started
        rate = events / elapsed if elapsed > 0 else 0.0
        click.echo(
            f"applied {events:,} events ({rows:,} rows written) in {elapsed:.2f} s, "
            f"{rate:,.0f} events/s; every projection is at the head"
        )
        if not follow:
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        applied = {"events": 0, "rows": 0}

        def on_batch(report: BatchReport) -> None:
            applied["events"] += report.last - report.first + 1
            applied["rows"] += report.rows

        click.echo("following new events; Ctrl-C stops", err=True)
        with ProjectionRunner(store, by_name(list(names))) as runner:
            try:
                runner.follow(stop.is_set, on_batch)
            except KeyboardInterrupt:
                stop.set()
        click.echo(
            f"stopped: applied {applied['events']:,} more events ({applied['rows']:,} rows written)"
        )


@projections_group.command("rebuild")
@click.argument("name", type=click.Choice([p.name for p in PROJECTIONS]))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--show", "shown", type=int, default=20, show_default=True,
              help="Print at most this many differing rows.")  # fmt: skip
@click.option("--replace", is_flag=True,
              help="If they differ, replace the live view with the rebuilt one.")  # fmt: skip
def rebuild_command(name: str, as_json: bool, shown: int, replace: bool) -> None:
    """Replay the ledger from position 0 into fresh tables and compare with the live view.

    Both sides are compared at the same position, by checksum and row by row; the live
    view is not touched unless --replace is given and they differ. Exit status 0:
    equal; 1: they differed (each difference is printed; replaced with --replace);
    2: it could not run.

    Example:

        regledger projections rebuild transactions --replace
    """
    (projection,) = by_name([name])
    with _store() as (_, store):
        with _bar(f"rebuilding {name}") as advance:
            report = rebuild(store, projection, on_progress=advance)
        if replace and not report.equal:
            with _bar(f"replacing {name}") as advance:
                replace_live(store, projection, report.position, on_progress=advance)
    if as_json:
        click.echo(json.dumps({**_report_json(report), "replaced": replace and not report.equal},
                              indent=2))  # fmt: skip
    else:
        _print_rebuild(report, shown)
        if replace and not report.equal:
            click.echo("replaced: the live view now holds the rebuilt rows")
    sys.exit(0 if report.equal else 1)


def _bar(label: str) -> AbstractContextManager[Callable[[int, int], None] | None]:
    """A progress bar on a terminal; nothing otherwise."""
    return progress_bar(label) if err.is_terminal else nullcontext()


def _report_json(report: RebuildReport) -> dict[str, Any]:
    return {
        "projection": report.projection,
        "position": report.position,
        "equal": report.equal,
        "tables": [
            {
                "table": live.table,
                "live_rows": live.rows,
                "live_sha256": live.sha256,
                "rebuilt_rows": built.rows,
                "rebuilt_sha256": built.sha256,
            }
            for live, built in zip(report.live, report.rebuilt, strict=True)
        ],  # fmt: skip
        "difference_count": report.difference_count,
        "differences": [
            {
                "table": d.table,
                "key": list(d.key),
                "kind": d.kind,
                "columns": [{"column": c, "live": a, "rebuilt": b} for c, a, b in d.columns],
            }
            for d in report.differences
        ],  # fmt: skip
    }


def _print_rebuild(report: RebuildReport, shown: int) -> None:
    at = "an empty log" if report.position is None else f"position {report.position:,}"
    click.echo(f"projection: {report.projection}, compared at {at}")
    for live, built in zip(report.live, report.rebuilt, strict=True):
        same = "equal" if live.sha256 == built.sha256 else "DIFFERENT"
        click.echo(
            f"  {live.table}: live {live.rows:,} rows sha256 {live.sha256[:16]}..., "
            f"rebuilt {built.rows:,} rows sha256 {built.sha256[:16]}...: {same}"
        )
    if report.equal:
        click.echo("result: EQUAL: the live view is exactly what the ledger rebuilds")
        return
    click.echo(f"result: DIFFERENT: {report.difference_count:,} row(s) differ")
    for d in report.differences[:shown]:
        key = "/".join(str(k) for k in d.key)
        if d.kind == "missing":
            click.echo(f"  {d.table} {key}: missing from the live view")
        elif d.kind == "extra":
            click.echo(f"  {d.table} {key}: in the live view, not in the ledger")
        else:
            for column, live, built in d.columns:
                click.echo(f"  {d.table} {key}: {column} live {live!r}, rebuilt {built!r}")
    if report.difference_count > shown:
        click.echo(f"  ... and {report.difference_count - shown:,} more (--show N, or --json)")


@click.command("lineage")
@click.argument("identifier")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def lineage_command(identifier: str, as_json: bool) -> None:
    """Follow a trade from decision to executions, with the ledger position of each step.

    IDENTIFIER is a decision id, a client order id or an execution id. The steps:
    decision, market data it used, risk figures in force, pre-trade checks, orders,
    executions. Prove any step with `regledger prove POSITION`. When the decision's
    lineage hash names an indicator snapshot (`regledger worker indicators`), that
    snapshot is shown too, with whether its stored bytes still hash to it.

    Example:

        regledger lineage DEC-20260302-7-00011
    """
    with _store() as (_, store):
        with ProjectionRunner(store, PROJECTIONS) as runner:
            lag = max(s.lag for s in runner.status())
        if lag:
            err.print(
                f"warning: the projections are {lag:,} events behind the ledger; run "
                "`regledger projections run` (or keep `run --follow` going)",
                highlight=False,
            )
        with store.view_session() as session:
            found = lineage(session, identifier)
            cited = [
                {**row, "decision_id": d.id}
                for d in found.of("decision")
                for row in stored_snapshots(session, d.row["lineage_hash"])
            ]
        hashes = {
            p: record.hash.hex()
            for step in found.steps
            for p in step.positions
            if (record := store.record_at(p)) is not None
        }
    if as_json:
        document = _lineage_json(found, hashes)
        document["indicator_snapshots"] = [
            {
                "decision_id": row["decision_id"],
                "symbol": row["symbol"],
                "timeframe": row["timeframe"],
                "bar_time": row["bar_key"],
                "hash": row["snapshot_hash"],
                "intact": row["intact"],
            }
            for row in cited
        ]
        click.echo(json.dumps(document, indent=2))
        return
    _print_lineage(found, hashes)
    for row in cited:
        verdict = "intact" if row["intact"] else "CHANGED: its stored bytes no longer hash to it"
        click.echo(
            f"decision {row['decision_id']} cites indicator snapshot {row['snapshot_hash']}: "
            f"{row['symbol']} {row['timeframe']} bar {row['bar_key']}, {verdict} "
            "(`regledger indicators show HASH`)"
        )


def _lineage_json(found: Lineage, hashes: dict[int, str]) -> dict[str, Any]:
    return {
        "requested": found.requested,
        "steps": [
            {
                "stage": s.stage,
                "id": s.id,
                "at": s.at.isoformat(),
                "positions": [{"position": p, "hash": hashes.get(p)} for p in s.positions],
                "summary": s.summary,
                "row": plain(s.row),
            }
            for s in found.steps
        ],  # fmt: skip
    }


def _print_lineage(found: Lineage, hashes: dict[int, str]) -> None:
    table = Table(title=f"lineage of {found.requested}", box=box.SIMPLE)
    for column in ("stage", "id", "at (UTC)", "positions", "summary"):
        table.add_column(column)
    for s in found.steps:
        table.add_row(
            s.stage,
            s.id,
            s.at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            ", ".join(str(p) for p in s.positions),
            s.summary,
        )
    Console(width=200).print(table)
    last = max((p for s in found.steps for p in s.positions), default=None)
    if last is not None:
        click.echo(f"event hash at position {last}: {hashes.get(last)}")
    click.echo(f"{len(found.steps)} steps; prove any with `regledger prove POSITION`")
