"""Fresh, migrated ledger databases on the real servers.

PostgreSQL comes from ``REGLEDGER_TEST_DSN`` (a superuser DSN; ``scripts/test``
provides one, starting a throwaway cluster when none answers). Each database is
created for one test and dropped after it.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ledger import Settings, open_store
from ledger.store import ChainStore

DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_dsn() -> str:
    return os.environ.get("REGLEDGER_TEST_DSN") or DEFAULT_ADMIN_DSN


def dsn_for(dbname: str, user: str | None = None) -> str:
    """A postgresql:// URL to ``dbname`` on the test server (optionally as ``user``)."""
    parts = conninfo_to_dict(admin_dsn())
    host = parts.get("host", "127.0.0.1")
    port = parts.get("port", "5432")
    who = user or parts.get("user", "postgres")
    password = parts.get("password")
    credentials = who if not password or user else f"{who}:{password}"
    return f"postgresql://{credentials}@{host}:{port}/{dbname}"


@contextmanager
def postgres_database() -> Iterator[str]:
    """Create an empty database, yield its URL, drop it afterwards."""
    name = f"rl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn(), autocommit=True) as admin:
        admin.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    try:
        yield dsn_for(name)
    finally:
        with psycopg.connect(admin_dsn(), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            admin.execute(
                psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(psycopg.sql.Identifier(name))
            )


@contextmanager
def ledger_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty ledger database of ``backend``; yields its URL."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / f'ledger-{uuid.uuid4().hex[:8]}.db'}"
        with open_store(Settings(database_url=url)) as store:
            store.migrate()
        yield url
        return
    with postgres_database() as url:
        with open_store(Settings(database_url=url)) as store:
            store.migrate()
        yield url


def superuser_connection(url: str) -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection to the ledger database as the test superuser."""
    return psycopg.connect(url, autocommit=True)


def open_migrated(url: str) -> ChainStore:
    return open_store(Settings(database_url=url))


__all__ = [
    "admin_dsn",
    "dsn_for",
    "ledger_url",
    "make_conninfo",
    "open_migrated",
    "postgres_database",
    "superuser_connection",
]


@contextmanager
def copy_of(url: str, folder: Path) -> Iterator[str]:
    """A copy of the ledger at ``url`` (nothing may be connected to it); yields its URL."""
    if url.startswith("sqlite:///"):
        target = folder / f"copy-{uuid.uuid4().hex[:8]}.db"
        with (
            closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as source,
            closing(sqlite3.connect(target)) as copy,
        ):
            source.backup(copy)
        yield f"sqlite:///{target}"
        return
    name = f"rl_test_{uuid.uuid4().hex[:12]}"
    template = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(admin_dsn(), autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(str(template))
            )
        )
    try:
        yield dsn_for(name)
    finally:
        with psycopg.connect(admin_dsn(), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def recorded_demo(backend: str, folder: Path) -> Iterator[str]:
    """A ledger holding the demo day (seed 7), not projected; yields its URL. Tests copy
    it (``copy_of``) rather than connect to it."""
    from console.demo import run_demo  # the console is above the ledger: import on use
    from console.trail import open_trail

    with ledger_url(backend, folder) as url:
        trail = open_trail(Settings(database_url=url))
        try:
            run_demo(trail, days=1, seed=7)
        finally:
            trail.close()
        yield url
