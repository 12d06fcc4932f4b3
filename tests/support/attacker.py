"""Raw access to a ledger database with the append-only triggers out of the way,
as a superuser (PostgreSQL) or whoever holds the file (SQLite) could have it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import psycopg


class Attacker:
    """Runs SQL (``?`` placeholders) on the ledger with the append-only triggers disabled."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            self._sqlite: sqlite3.Connection | None = sqlite3.connect(
                url.removeprefix("sqlite:///"), isolation_level=None
            )
            # Whoever holds the file can drop the triggers.
            for trigger in (
                "ledger_events_no_update",
                "ledger_events_no_delete",
                "ledger_tree_nodes_no_update",
                "ledger_tree_nodes_no_delete",
            ):
                self._sqlite.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            self._pg: psycopg.Connection[Any] | None = None
        else:
            self._sqlite = None
            self._pg = psycopg.connect(url, autocommit=True)
            # A superuser can switch triggers off for the session (works on hypertables too).
            self._pg.execute("SET session_replication_role = replica")

    def run(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self._sqlite is not None:
            return self._sqlite.execute(statement, params).fetchall()
        assert self._pg is not None
        cur = self._pg.execute(statement.replace("?", "%s"), params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []

    def row(self, position: int) -> tuple[Any, ...]:
        rows = self.run(
            "SELECT position, originator_id, originator_version, topic, state, recorded_at, "
            "prev_hash, hash FROM ledger_events WHERE position = ?",
            (position,),
        )
        return rows[0]

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            self._pg.close()
