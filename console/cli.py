"""The ``regledger`` command line: one click group, hyphenated subcommands."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from ledger import LedgerError, Settings, open_store
from ledger.settings import redact_url
from ledger.verify import VerifyReport, verify_ledger

from .errors import CommandError

__all__ = ["cli", "main"]

err = Console(stderr=True)


class LedgerGroup(click.Group):
    """Turns the ledger's own errors into one-line messages (exit 2), never tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LedgerError as exc:
            raise CommandError(str(exc)) from exc


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except LedgerError as exc:
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
    settings = _settings()
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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def verify(first: int, last: int | None, jobs: int | None, as_json: bool) -> None:
    """Recompute every hash and link of the log and check positions are gapless.

    Exit status 0: intact; 1: broken (the first bad position and what is wrong);
    2: usage or connection error. A range that starts after 0 trusts the stored
    hash just before it.

    Example:

        regledger verify --from 1000 --to 2000 --json
    """
    settings = _settings()
    _require_schema(settings)
    if as_json or not err.is_terminal:
        report = verify_ledger(settings, first=first, last=last, jobs=jobs)
    else:
        with _progress("verifying") as advance:
            report = verify_ledger(settings, first=first, last=last, jobs=jobs, progress=advance)
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        _print_report(report)
    sys.exit(0 if report.ok else 1)


def _require_schema(settings: Settings) -> None:
    with open_store(settings) as store:
        pending = store.pending_migrations()
    if pending:
        raise CommandError(
            f"{redact_url(settings.database_url)} has {len(pending)} pending migration(s) "
            f"(first: {pending[0].name}); run `regledger db migrate`"
        )


class _progress:
    """A rich progress bar (stderr by default); yields ``advance(done, total)``."""

    def __init__(self, label: str, console: Console | None = None) -> None:
        self._bar = Progress(
            TextColumn(label),
            BarColumn(),
            TaskProgressColumn(),
            MofNCompleteColumn(),  # copes with a total not known yet
            TextColumn("events"),
            TimeRemainingColumn(),
            console=console or err,
            transient=True,
        )
        self._task = self._bar.add_task(label, total=None)

    def __enter__(self) -> Callable[[int, int], None]:
        self._bar.start()
        return lambda done, total: self._bar.update(self._task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()


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


def main() -> None:
    cli(prog_name="regledger")
