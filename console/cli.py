"""The ``regledger`` command line: one click group, hyphenated subcommands."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import click
from rich import box
from rich.console import Console
from rich.table import Table

from domain.application import AuditTrail
from domain.errors import DomainError
from ledger import LedgerError, Settings, open_store
from ledger.canonical import GENESIS_PREV_HASH, datetime_to_micros
from ledger.checkpoint import Checkpoint, split_note
from ledger.checkpointing import check_against, issue_checkpoint
from ledger.keys import VerifierKey, generate, load_signer, verifiers_from, write_signer
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.settings import redact_url
from ledger.verify import VerifyReport, verify_ledger

from .browse import EventView, aggregate_id, iter_events, plain, view
from .browse import history as browse_history
from .bundle_commands import export_command, verify_bundle_command
from .demo import DemoSummary, run_demo
from .errors import CommandError
from .indicator_commands import indicators_group
from .options import load_settings, require_schema, when
from .progress import progress_bar as _progress
from .projection_commands import catch_up, lineage_command, projections_group
from .trail import open_trail
from .worker_commands import worker_command

__all__ = ["cli", "main"]

err = Console(stderr=True)


class LedgerGroup(click.Group):
    """Turns the ledger's own errors into one-line messages (exit 2), never tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (LedgerError, DomainError) as exc:
            raise CommandError(str(exc)) from exc


@click.group(cls=LedgerGroup)
@click.version_option(package_name="regledger")
def cli() -> None:
    """regledger: the hash-chained audit and compliance ledger.

    The database comes from REGLEDGER_DATABASE_URL (default sqlite:///./regledger.db).

    Example:

        regledger db migrate && regledger verify
    """


@cli.group(cls=LedgerGroup)
def db() -> None:
    """Create and upgrade the ledger's database schema.

    Example:

        regledger db migrate --list
    """


@db.command("migrate")
@click.option("--list", "list_only", is_flag=True, help="Show applied and pending migrations.")
def db_migrate(list_only: bool) -> None:
    """Apply pending migrations (forward-only, each recorded with its sha256).

    Run it as the database owner; the service then writes as regledger_writer.

    Example:

        REGLEDGER_DATABASE_URL=postgresql://owner@db/ledger regledger db migrate
    """
    settings = load_settings()
    with open_store(settings) as store:
        if list_only:
            applied = {m.version: m for m in store.applied_migrations()}
            pending = {m.version for m in store.pending_migrations()}
            from ledger.store import migration_files

            for migration in migration_files(store.backend):
                done = applied.get(migration.version)
                state = "pending" if migration.version in pending else "applied"
                when = done.applied_at if done is not None else ""
                click.echo(f"{state:8} {migration.name:40} {migration.sha256[:12]}  {when}")
            return
        applied_now = store.migrate(lambda m: err.print(f"applied {m.name}", highlight=False))
    click.echo(
        f"{len(applied_now)} migration(s) applied to {redact_url(settings.database_url)}; "
        "schema is up to date"
    )


@cli.command()
@click.option("--from", "first", type=int, default=0, show_default=True, help="First position.")
@click.option("--to", "last", type=int, default=None, help="Last position [default: the head].")
@click.option("--jobs", type=int, default=None, help="Worker processes (PostgreSQL, large logs).")
@click.option("--checkpoint", "checkpoint_file", default=None, type=click.Path(exists=True),
              help="Also check the log against this signed checkpoint note.")  # fmt: skip
@click.option("--key", "key_texts", multiple=True,
              help="Trusted verifier key (vkey text or file); repeat for rotation.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def verify(
    first: int,
    last: int | None,
    jobs: int | None,
    checkpoint_file: str | None,
    key_texts: tuple[str, ...],
    as_json: bool,
) -> None:
    """Recompute every hash and link of the log and check positions are gapless.

    Exit status 0: intact; 1: broken (the first bad position and what is wrong);
    2: usage or connection error. A range that starts after 0 trusts the stored
    hash just before it.

    Example:

        regledger verify --from 1000 --to 2000 --json
    """
    settings = load_settings()
    require_schema(settings)
    if checkpoint_file is not None and not key_texts:
        raise CommandError("--checkpoint needs --key: the verifier key you trust")
    if as_json or not err.is_terminal:
        report = verify_ledger(settings, first=first, last=last, jobs=jobs)
    else:
        with _progress("verifying") as advance:
            report = verify_ledger(settings, first=first, last=last, jobs=jobs, progress=advance)
    mismatch = None
    checked: dict[str, Any] | None = None
    if checkpoint_file is not None:
        note = Path(checkpoint_file).read_text(encoding="utf-8")
        with open_store(settings) as store:
            cp, mismatch = check_against(store, note, _verifier_keys(key_texts))
        checked = {
            "origin": cp.origin,
            "size": cp.size,
            "root": cp.root.hex(),
            "ok": mismatch is None,
            "mismatch": None
            if mismatch is None
            else {"kind": mismatch.kind, "detail": mismatch.detail},
        }
    if as_json:
        click.echo(json.dumps({**report.as_json(), "checkpoint": checked}, indent=2))
    else:
        _print_report(report)
        if checked is not None:
            verdict = "MATCHES" if mismatch is None else f"MISMATCH ({mismatch.kind})"
            click.echo(f"checkpoint: {verdict}: {checked['origin']} size {checked['size']:,}")
            if mismatch is not None:
                click.echo(f"detail:    {mismatch.detail}")
    sys.exit(0 if report.ok and mismatch is None else 1)


def _verifier_keys(texts: tuple[str, ...]) -> tuple[VerifierKey, ...]:
    """Verifier keys from vkey lines or files holding them."""
    lines: list[str] = []
    for text in texts:
        path = Path(text)
        lines += path.read_text(encoding="utf-8").split() if path.is_file() else [text]
    return verifiers_from(lines)


def output_format(command: Callable[..., Any]) -> Callable[..., Any]:
    """The shared ``--format table|json|csv`` option."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json", "csv"]),
        default="table",
        show_default=True,
        help="table for people; json (an array) or csv for tools.",
    )(command)


_COLUMNS = (
    "position",
    "recorded_at",
    "event_type",
    "actor",
    "aggregate_id",
    "version",
    "occurred_at",
    "source_event_id",
)


def _emit(events: Iterator[EventView], fmt: str, title: str) -> int:
    """Print events in ``fmt``; return how many."""
    count = 0
    if fmt == "json":
        click.echo("[", nl=False)
        for event in events:
            click.echo(("," if count else "") + "\n" + json.dumps(event.as_json()), nl=False)
            count += 1
        click.echo("\n]" if count else "]")
        return count
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([*_COLUMNS, "payload", "prev_hash", "hash"])
        for event in events:
            row = event.as_json()
            writer.writerow(
                [
                    *(row[c] for c in _COLUMNS),
                    json.dumps(row["payload"]),
                    row["prev_hash"],
                    row["hash"],
                ]  # fmt: skip
            )
            count += 1
        return count
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("pos", justify="right", no_wrap=True, min_width=3)
    table.add_column("recorded at (UTC)", no_wrap=True, min_width=23)
    table.add_column("event", no_wrap=True, min_width=20)
    table.add_column("actor", no_wrap=True, min_width=6)
    screen = Console()
    wide = screen.width >= 110  # the payload only where it fits; json/csv always have it
    if wide:
        table.add_column("payload", overflow="ellipsis", no_wrap=True, max_width=screen.width - 62)
    for event in events:
        cells = [
            str(event.position),
            event.recorded_at[:23].replace("T", " "),  # to the ms here; json/csv are exact
            event.event_type,
            event.actor or "",
        ]
        table.add_row(*cells, *([json.dumps(event.payload)] if wide else []))
        count += 1
    screen.print(table)
    click.echo(f"{count:,} event(s)")
    return count


@cli.command()
@click.option("--from", "first", type=int, default=0, show_default=True, help="First position.")
@click.option("--to", "last", type=int, default=None, help="Last position.")
@click.option("--since", default=None, help="Recorded at or after (ISO 8601, with zone).")
@click.option("--until", default=None, help="Recorded at or before (ISO 8601, with zone).")
@click.option("--type", "event_type", default=None, help="Event type, e.g. Order.Placed.")
@click.option("--aggregate", default=None, help="Aggregate id, or KIND/KEY (order/ORD-1).")
@click.option("--actor", default=None, help="Who did it.")
@click.option("--limit", type=int, default=None, help="At most this many events.")
@output_format
def events(
    first: int,
    last: int | None,
    since: str | None,
    until: str | None,
    event_type: str | None,
    aggregate: str | None,
    actor: str | None,
    limit: int | None,
    fmt: str,
) -> None:
    """List recorded events, decoded, in position order; filters combine.

    Example:

        regledger events --type Deployment.RolledBack --since 2026-03-02T00:00:00Z --format json
    """
    settings = load_settings()
    require_schema(settings)
    with open_store(settings) as store, _trail(settings) as trail:
        _emit(
            iter_events(
                store,
                trail.mapper,
                first=first,
                last=last,
                since=when(since, "--since"),
                until=when(until, "--until"),
                event_type=event_type,
                aggregate=None if aggregate is None else _aggregate(aggregate),
                actor=actor,
                limit=limit,
            ),
            fmt,
            "events",
        )


@cli.command()
@click.argument("position", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def show(position: int, as_json: bool) -> None:
    """Show one event, decoded, with its hash and its link to the previous event.

    The hash is recomputed from the stored row and the link checked against the
    previous row's hash.

    Example:

        regledger show 41 --json
    """
    settings = load_settings()
    require_schema(settings)
    with open_store(settings) as store, _trail(settings) as trail:
        record = store.record_at(position)
        if record is None:
            last = store.max_position()
            raise CommandError(
                f"there is no event at position {position}; the log holds 0..{last}"
                if last is not None
                else f"there is no event at position {position}; the log is empty"
            )
        previous = store.record_at(position - 1) if position > 0 else None
        expected_link = previous.hash if previous is not None else GENESIS_PREV_HASH
        event = view(record, trail.mapper)
    checks = {
        "hash_recomputed": record.recompute_hash() == record.hash,
        "links_to_previous": record.prev_hash == expected_link,
    }
    if as_json:
        click.echo(json.dumps({**event.as_json(), **checks}, indent=2))
        return
    table = Table(show_header=False, box=None)
    for key, value in event.as_json().items():
        table.add_row(key, json.dumps(value, indent=2) if key == "payload" else str(value))
    for key, ok in checks.items():
        table.add_row(key, "yes" if ok else "NO")
    Console().print(table)


@cli.command()
@click.argument("aggregate")
@click.option("--as-of", default=None, help="Also show the record as it stood then (ISO 8601).")
@output_format
def history(aggregate: str, as_of: str | None, fmt: str) -> None:
    """Show an aggregate's full history: who did what, when, at which position.

    AGGREGATE is an id or KIND/KEY (order/ORD-1, deployment/CHG-1001). With
    --as-of, the record is re-created as it stood at that time, from the
    events recorded until then.

    Example:

        regledger history deployment/CHG-1001 --as-of 2026-03-02T10:00:00Z
    """
    settings = load_settings()
    require_schema(settings)
    aggregate_key = _aggregate(aggregate)
    moment = when(as_of, "--as-of")
    with open_store(settings) as store, _trail(settings) as trail:
        trail_events = browse_history(store, trail.mapper, aggregate_key)
        if not trail_events:
            raise CommandError(
                f"no events for aggregate {aggregate}; list ids with `regledger events`"
            )
        _emit(iter(trail_events), fmt, f"history of {aggregate}")
        if moment is not None:
            cutoff = moment.isoformat().replace("+00:00", "Z")
            cutoff_us = datetime_to_micros(moment)
            versions = [e.version for e in trail_events if e.recorded_at_us <= cutoff_us]
            if not versions:
                click.echo(f"as of {cutoff}: not yet recorded")
                return
            state: Any = trail.repository.get(UUID(aggregate_key), version=versions[-1])
            fields = {k.lstrip("_"): v for k, v in vars(state).items() if k != "_pending_events"}
            click.echo(f"as of {cutoff} (version {versions[-1]}):")
            click.echo(json.dumps(plain(fields), indent=2, sort_keys=True))


@cli.command()
@click.option("--days", type=click.IntRange(1, 250), default=1, show_default=True,
              help="Trading days to simulate (weekdays from 2026-03-02).")  # fmt: skip
@click.option("--seed", type=int, default=7, show_default=True, help="Same seed, same events.")
def demo(days: int, seed: int) -> None:
    """Record a simulated, audited trading day into an empty ledger, verify it, summarise it.

    Market data, model decisions, risk and RTS 6 pre-trade checks (some failing),
    orders and executions on real instruments and venues (an OTC FX forward with
    an EZ ISIN among them), a canary deployment rolled back after a latency breach,
    an emergency change approved afterwards, and a shadow-mode comparison. It runs
    on the embedded default; the database is migrated first if it is new.

    Example:

        regledger demo --days 2 --seed 11
    """
    settings = load_settings()
    with open_store(settings) as store:
        store.migrate()
        recorded = store.max_position()
    if recorded is not None:
        raise CommandError(
            f"{redact_url(settings.database_url)} already holds {recorded + 1:,} events; the "
            "demo records into an empty ledger: set REGLEDGER_DATABASE_URL to a new file"
        )
    with _trail(settings) as trail:
        if err.is_terminal:
            with _progress("recording", unit="steps") as advance:
                summary = run_demo(trail, days=days, seed=seed, progress=advance)
        else:
            summary = run_demo(trail, days=days, seed=seed)
    report = verify_ledger(settings)
    with open_store(settings) as store:
        projected, rows = catch_up(store)
    _print_demo(summary, report)
    click.echo(
        f"projected: {projected:,} events into {rows:,} view rows; try "
        "`regledger projections status` and `regledger lineage DECISION-ID`"
    )
    sys.exit(0 if report.ok else 1)


def _print_demo(summary: DemoSummary, report: VerifyReport) -> None:
    table = Table(
        title=f"events by type ({summary.first_day} to {summary.last_day})", box=box.SIMPLE
    )
    table.add_column("event")
    table.add_column("count", justify="right")
    for name, count in summary.events_by_type.items():
        table.add_row(name, f"{count:,}")
    Console().print(table)
    click.echo(
        f"recorded:  {summary.total_events:,} events over {summary.days} day(s), "
        f"seed {summary.seed}"
    )
    click.echo(
        f"trading:   {summary.decisions:,} decisions, {summary.orders_placed:,} orders placed, "
        f"{summary.orders_blocked:,} blocked by {summary.failed_checks:,} failed pre-trade checks, "
        f"{summary.executions:,} executions, {summary.risk_breaches:,} risk breaches"
    )
    click.echo(
        f"changes:   {summary.rollbacks:,} rollback(s); "
        "see `regledger events --type Rollback.Executed`"
    )
    _print_report(report)


def _aggregate(text: str) -> str:
    try:
        return aggregate_id(text)
    except ValueError:
        raise CommandError(
            f"aggregate {text!r} is neither an id (a UUID) nor KIND/KEY like order/ORD-1"
        ) from None


@contextmanager
def _trail(settings: Settings) -> Iterator[AuditTrail]:
    trail = open_trail(settings)
    try:
        yield trail
    finally:
        trail.close()


@cli.group(cls=LedgerGroup)
def keys() -> None:
    """Ed25519 keys for signed checkpoints (C2SP signed-note format).

    Example:

        regledger keys generate regledger.example/ledger --out ledger.key
    """


@keys.command("generate")
@click.argument("name")
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True,
              help="Private key file to create (mode 0600; never overwritten).")  # fmt: skip
def keys_generate(name: str, out: str) -> None:
    """Generate a signing key NAME; write it to --out, print its verifier key.

    Give the verifier key (one line) to auditors through a channel you do not
    control alone; keep the private key file secret. Rotate by generating a new
    key: verifiers accept several keys.

    Example:

        regledger keys generate regledger.example/ledger --out ledger.key > ledger.vkey
    """
    signer = generate(name)
    try:
        write_signer(out, signer)
    except FileExistsError:
        raise CommandError(
            f"{out} already exists; keys are never overwritten: choose another --out"
        ) from None
    click.echo(signer.verifier().encode())
    err.print(f"private key written to {out} (mode 0600); the line above is the verifier key")


@cli.command()
@click.option(
    "--key-file", default=None, help="Private key file [default: $REGLEDGER_SIGNING_KEY]."
)
@click.option(
    "--out", default=None, type=click.Path(dir_okay=False), help="Also write the note here."
)
def checkpoint(key_file: str | None, out: str | None) -> None:
    """Sign a checkpoint of the whole log (size and Merkle root) and store it.

    Before signing, the ledger proves the new tree consistent with the last
    checkpoint it issued, and refuses to sign if it is not (events removed or
    changed). The origin comes from REGLEDGER_LOG_ORIGIN.

    Example:

        regledger checkpoint --key-file ledger.key --out checkpoint.note
    """
    settings = load_settings()
    require_schema(settings)
    signer = load_signer(key_file)
    with open_store(settings) as store:
        note = issue_checkpoint(store, signer, settings.log_origin)
    if out is not None:
        Path(out).write_text(note, encoding="utf-8")
    click.echo(note, nl=False)


@cli.command()
@click.argument("position", type=int)
@click.option("--checkpoint", "checkpoint_file", default=None, type=click.Path(exists=True),
              help="Prove against this checkpoint note [default: the latest issued].")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def prove(position: int, checkpoint_file: str | None, as_json: bool) -> None:
    """Print the RFC 9162 inclusion proof of one event in a checkpoint's tree.

    The proof is checked against the checkpoint's root before it is printed.

    Example:

        regledger prove 41 --checkpoint checkpoint.note --json
    """
    settings = load_settings()
    require_schema(settings)
    with open_store(settings) as store:
        note = (
            Path(checkpoint_file).read_text(encoding="utf-8")
            if checkpoint_file is not None
            else store.latest_checkpoint()
        )
        if note is None:
            raise CommandError(
                f"no checkpoint has been issued to prove position {position} against; run "
                "`regledger checkpoint` first"
            )
        cp = Checkpoint.parse(split_note(note)[0])
        if not 0 <= position < cp.size:
            raise CommandError(
                f"position {position} is outside the checkpoint's tree of {cp.size:,} events "
                f"(0..{cp.size - 1}); issue a newer checkpoint"
            )
        record = store.record_at(position)
        if record is None:
            raise CommandError(f"there is no event at position {position}")
        proof = store.inclusion_proof(position, cp.size)
    leaf = leaf_hash(record.hash)
    verify_inclusion(position, cp.size, leaf, proof, cp.root)
    result = {
        "origin": cp.origin,
        "tree_size": cp.size,
        "root": cp.root.hex(),
        "position": position,
        "event_hash": record.hash.hex(),
        "leaf_hash": leaf.hex(),
        "proof": [p.hex() for p in proof],
        "verified": True,
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        if key == "proof":
            click.echo(f"{'proof:':12}{len(proof)} hashes, leaf to root:")
            for node in proof:
                click.echo(f"            {node.hex()}")
        else:
            click.echo(f"{key + ':':12}{value}")


def _print_report(report: VerifyReport) -> None:
    span = "empty log" if report.last is None else f"positions {report.first}..{report.last}"
    click.echo(f"database:  {report.database}")
    click.echo(
        f"checked:   {report.checked:,} events ({span}) in {report.elapsed_s:.2f} s, "
        f"{report.events_per_s:,.0f} events/s"
    )
    if report.fault is None:
        if report.checked:
            click.echo(
                f"head:      position {report.head.next_position - 1}, "
                f"hash {report.head.last_hash.hex()}"
            )
        click.echo("result:    INTACT: every hash, link and position checks out")
    else:
        click.echo(
            f"result:    BROKEN at position {report.fault.position} ({report.fault.kind.value})"
        )
        click.echo(f"detail:    {report.fault.detail}")


cli.add_command(export_command)
cli.add_command(verify_bundle_command)
cli.add_command(projections_group)
cli.add_command(lineage_command)
cli.add_command(worker_command)
cli.add_command(indicators_group)


def main() -> None:
    cli(prog_name="regledger")


if __name__ == "__main__":  # `python -m console.cli`: how `regledger worker` starts its roles
    main()
