"""What the benchmarks share: throwaway databases on a server, timed contenders, progress."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = [
    "Contender",
    "db_parts",
    "db_url",
    "drop_databases",
    "progress_bar",
    "recreate_databases",
]


def db_parts(admin_dsn: str) -> dict[str, Any]:
    """Host, port, user and password of the admin DSN's server."""
    params = conninfo_to_dict(admin_dsn)
    return {
        "host": str(params.get("host") or "127.0.0.1"),
        "port": int(params.get("port") or 5432),
        "user": str(params.get("user") or os.environ.get("PGUSER") or "postgres"),
        "password": str(params.get("password") or ""),
    }


def db_url(admin_dsn: str, dbname: str) -> str:
    """The URL of ``dbname`` on the admin DSN's server."""
    parts = db_parts(admin_dsn)
    user, password, host = parts["user"], parts["password"], parts["host"]
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    netloc_host = f"[{host}]" if ":" in host else host
    return f"postgresql://{auth}@{netloc_host}:{parts['port']}/{dbname}"


def _terminate_and_drop(conn: psycopg.Connection[Any], dbname: str) -> None:
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        (dbname,),
    )
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname)))


def recreate_databases(admin_dsn: str, names: Sequence[str]) -> str:
    """Drop and create each of ``names``; return the server's version."""
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
        version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        for name in names:
            _terminate_and_drop(conn, name)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return version


def drop_databases(admin_dsn: str, names: Sequence[str]) -> None:
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
        for name in names:
            _terminate_and_drop(conn, name)


@dataclass
class Contender:
    """One contender of a side-by-side measurement."""

    name: str
    insert: Callable[[int], None]  # inserts batch i of the shared list
    seconds: float = 0.0
    events: int = 0

    @property
    def eps(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def run_and_report(
    args: Any,
    database: str,
    run: Callable[[Any, Console], tuple[dict[str, Any], list[str]]],
    print_table: Callable[[Console, dict[str, Any]], None],
    summary: Callable[[dict[str, Any]], str],
) -> int:
    """Run a benchmark, drop its database (unless ``args.keep``), then print its profiles
    to stderr, its table (to stderr under ``--json``), the JSON object and the summary."""
    console = Console(stderr=True)
    try:
        result, profiles = run(args, console)
    finally:
        if not args.keep:
            try:
                drop_databases(args.dsn, [database])
            except psycopg.Error as exc:
                console.print(f"[red]could not drop {database}: {exc}[/red]")
    for text in profiles:
        sys.stderr.write(text)  # unwrapped: pstats' own columns
    print_table(console if args.json else Console(), result)
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    console.print(summary(result), markup=False, highlight=False)
    return 0


DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def add_dsn_option(parser: argparse.ArgumentParser) -> None:
    """``--dsn``: the admin DSN, default ``$REGLEDGER_TEST_DSN``, else the local server."""
    parser.add_argument(
        "--dsn",
        default=os.environ.get("REGLEDGER_TEST_DSN") or DEFAULT_DSN,
        help="admin DSN of the server (a database to connect to while creating the bench one)",
    )


def sized_options(
    parser: argparse.ArgumentParser, sizes: dict[str, tuple[int, int]], argv: Any
) -> argparse.Namespace:
    """Parse the options of a bench with workload sizes (name: (full, --quick)): --quick,
    --repeat, one option per size, --dsn, --keep, --profile, --json; sizes left out take
    their full or quick default; every count must be positive."""
    parser.add_argument("--quick", action="store_true", help="a CI-size run (under a minute)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (median)")
    for name, (full, quick) in sizes.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=int,
            default=None,
            help=f"default {full:,}" + (f", {quick:,} with --quick" if quick != full else ""),
        )
    add_dsn_option(parser)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--profile", action="store_true", help="one more, profiled, pass (stderr)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    for name, (full, quick) in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.repeat < 1 or any(getattr(args, name) < 1 for name in sizes):
        names = ", ".join(f"--{n.replace('_', '-')}" for n in sizes)
        parser.error(f"--repeat, {names} must be positive")
    return args
