"""Read-model tables, and the session that writes them and a tracking position atomically.

The projections (``projections/``) decide what a row holds; this module says how a
table is shaped (:class:`TableSpec`) and what every backend offers to write and read
one (:class:`ViewSession`). A session is one connection; each ``transaction()`` on it
commits the view rows it wrote together with the tracking positions it advanced, or
neither.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Column", "Kind", "Row", "TableSpec", "ViewSession", "tracking_name", "unique_row"]

Row = dict[str, Any]


class Kind(StrEnum):
    """What a column holds, as Python sees it (the backends store each their own way)."""

    TEXT = "text"  # str
    INT = "int"  # int
    DECIMAL = "decimal"  # decimal.Decimal, exact
    TIME = "time"  # datetime, UTC, microseconds
    BOOL = "bool"  # bool
    JSON = "json"  # a JSON object or list (dict[str, str], list[str])
    POSITIONS = "positions"  # list[int]: ledger positions


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind


@dataclass(frozen=True)
class TableSpec:
    """A view table: its columns in order, and its key (text columns, in order)."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    names: tuple[str, ...] = field(init=False)
    kinds: Mapping[str, Kind] = field(init=False)

    def __post_init__(self) -> None:
        names = tuple(c.name for c in self.columns)
        kinds = {c.name: c.kind for c in self.columns}
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "kinds", kinds)
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name}: a column is declared twice")
        for name in self.key:
            # Text keys sort the same in Python, in PostgreSQL (COLLATE "C") and in
            # SQLite (BINARY): scans come back in one order on every backend.
            if kinds.get(name) is not Kind.TEXT:
                raise ValueError(f"table {self.name}: key column {name} must be a text column")

    def key_of(self, row: Row) -> tuple[Any, ...]:
        return tuple(row[name] for name in self.key)


def unique_row(table: TableSpec, where: Mapping[str, Any], rows: Sequence[Row]) -> Row | None:
    """The one row a ``fetch`` found, None for none; more than one is an error."""
    if len(rows) > 1:
        raise LookupError(f"{table.name} has more than one row where {dict(where)}")
    return rows[0] if rows else None


def tracking_name(projection: str) -> str:
    """The ``ledger_tracking`` application name of a projection."""
    return f"projection:{projection}"


class ViewSession(ABC):
    """One connection that writes view rows and tracking positions in transactions.

    Positions here are ledger positions (0, 1, ...): ``tracked()`` is the last
    position a projection has applied, None before the first.
    """

    backend: str

    @abstractmethod
    def transaction(self, *, snapshot: bool = False) -> AbstractContextManager[None]:
        """Commit everything written inside, or nothing. ``snapshot``: every read inside
        sees one consistent state of the database (for comparisons)."""

    @abstractmethod
    def _tracking(self, query: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Run a named tracking query of this backend's ledger/sql file; its first row."""

    def tracked(self, name: str) -> int | None:
        """The last position projection ``name`` applied (committed), None before any."""
        row = self._tracking("view_tracked", {"name": name})
        # notification id = position + 1; 0 after a reset
        return None if row is None or row[0] == 0 else int(row[0]) - 1

    def advance(self, name: str, expected: int | None, position: int) -> bool:
        """Move ``name`` from ``expected`` to ``position``; False, changing nothing, when
        it is no longer at ``expected`` (another runner moved it). Inside a transaction;
        it holds the projection until the transaction ends, so call it first."""
        old = 0 if expected is None else expected + 1
        params = {"name": name, "old": old, "new": position + 1}
        return self._tracking("view_advance", params) is not None

    def reset(self, name: str) -> None:
        """Forget the position of ``name`` (its tables are emptied by ``clear``)."""
        self._tracking("view_reset", {"name": name})

    @abstractmethod
    def fetch(self, table: TableSpec, where: Mapping[str, Any]) -> Row | None:
        """The row of ``table`` whose columns equal ``where`` (its key, or another set
        of columns the projection keeps unique), or None."""

    @abstractmethod
    def insert(self, table: TableSpec, rows: Sequence[Row]) -> None:
        """Insert new rows."""

    @abstractmethod
    def update(self, table: TableSpec, rows: Sequence[Row]) -> None:
        """Write every non-key column of rows that exist, found by key."""

    @abstractmethod
    def scan(self, table: TableSpec, *, scratch: bool = False) -> Iterator[Row]:
        """Every row, by key (code point order); ``scratch``: the scratch copy's rows."""

    @abstractmethod
    def use_scratch(self, tables: Sequence[TableSpec]) -> None:
        """Create empty scratch copies of ``tables`` private to this session; until it
        closes, ``fetch``, ``insert`` and ``update`` write the copies, ``scan`` reads
        the live tables unless asked for the scratch ones."""

    @abstractmethod
    def clear(self, tables: Sequence[TableSpec]) -> None:
        """Delete every row of ``tables`` (inside a transaction)."""

    @abstractmethod
    def query(self, table: TableSpec, sql: str, params: Mapping[str, Any]) -> list[Row]:
        """Rows of ``table`` a read query written for this backend selects (named
        ``%(x)s`` parameters on PostgreSQL, ``:x`` on SQLite); ``{columns}`` in it stands
        for the table's columns, in order, which the query must select."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection (scratch tables go with it)."""

    def __enter__(self) -> ViewSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
