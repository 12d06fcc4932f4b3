"""Copies of a recorded ledger, so that each stream test relays one of its own.

SQLite: the backup API. PostgreSQL: CREATE DATABASE ... TEMPLATE (dropped afterwards).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tests.support.databases import admin_dsn, dsn_for


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
