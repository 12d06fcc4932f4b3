"""Rebuild a projection from position 0 into scratch tables and compare it with the live view.

The comparison is over canonical rows (docs/PROJECTIONS.md): each row, by key, as a
JSON array of its values in column order: text and integers as themselves, decimals
in plain notation as recorded (``13.30``), times in UTC ISO 8601 with microseconds,
booleans, JSON as JSON, positions as a list. A table's checksum is the SHA-256 of its
canonical lines (each ending in a newline) in key order; the same rows give the same
checksum on every backend.

Live and rebuilt are compared at the same ledger position, inside one snapshot of the
database: if the live view moves on while the rebuild runs, the rebuild replays the
difference before it compares.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ledger.store import ChainStore
from ledger.views import Kind, Row, TableSpec, ViewSession, tracking_name

from .core import Projection, ProjectionError
from .runner import BATCH_SIZE, apply_records

__all__ = [
    "Difference",
    "RebuildReport",
    "TableChecksum",
    "canonical_line",
    "checksums",
    "rebuild",
    "replace_live",
]


def _canonical(kind: Kind, value: Any) -> Any:
    if value is None:
        return None
    if kind is Kind.DECIMAL:
        return format(Decimal(value), "f")
    if kind is Kind.TIME:
        assert isinstance(value, datetime)
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if kind is Kind.POSITIONS:
        return [int(p) for p in value]
    return value


def canonical_values(table: TableSpec, row: Row) -> list[Any]:
    return [_canonical(table.kinds[name], row[name]) for name in table.names]


def _line(values: list[Any]) -> bytes:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def canonical_line(table: TableSpec, row: Row) -> str:
    """One row as its canonical JSON line (without the newline)."""
    return _line(canonical_values(table, row)).decode()


class _Side:
    """One side of a comparison: its rows by key, as canonical values, hashed as read."""

    def __init__(self, table: TableSpec, rows: Iterator[Row]) -> None:
        self.table, self._rows = table, rows
        self.digest, self.count = hashlib.sha256(), 0

    def take(self) -> tuple[tuple[Any, ...], list[Any]] | None:
        row = next(self._rows, None)
        if row is None:
            return None
        values = canonical_values(self.table, row)
        self.digest.update(_line(values) + b"\n")
        self.count += 1
        return self.table.key_of(row), values

    def checksum(self) -> TableChecksum:
        return TableChecksum(self.table.name, self.count, self.digest.hexdigest())


@dataclass(frozen=True)
class TableChecksum:
    table: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class Difference:
    """One row that differs: missing from the live view, extra in it, or changed."""

    table: str
    key: tuple[Any, ...]
    kind: str  # "missing" (rebuilt has it, live does not), "extra" (live only), "changed"
    columns: tuple[tuple[str, Any, Any], ...] = ()  # (column, live, rebuilt), for "changed"


@dataclass
class RebuildReport:
    projection: str
    position: int | None  # the ledger position both sides were compared at
    live: list[TableChecksum] = field(default_factory=list)
    rebuilt: list[TableChecksum] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    difference_count: int = 0  # all of them, also those beyond the reported ones

    @property
    def equal(self) -> bool:
        return self.difference_count == 0


def checksums(session: ViewSession, projection: Projection) -> list[TableChecksum]:
    """The checksums of a projection's live tables, as they are now."""
    found: list[TableChecksum] = []
    for table in projection.tables:
        side = _Side(table, session.scan(table))
        while side.take() is not None:
            pass
        found.append(side.checksum())
    return found


def _compare(
    table: TableSpec, live: Iterator[Row], rebuilt: Iterator[Row], report: RebuildReport, limit: int
) -> None:
    def differ(key: tuple[Any, ...], kind: str, columns: tuple[Any, ...] = ()) -> None:
        report.difference_count += 1
        if len(report.differences) < limit:
            report.differences.append(Difference(table.name, key, kind, columns))

    left, right = _Side(table, live), _Side(table, rebuilt)
    a, b = left.take(), right.take()
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            differ(a[0], "extra")
            a = left.take()
        elif a is None or b[0] < a[0]:
            differ(b[0], "missing")
            b = right.take()
        else:
            changed = tuple(
                (name, x, y) for name, x, y in zip(table.names, a[1], b[1], strict=True) if x != y
            )
            if changed:
                differ(a[0], "changed", changed)
            a, b = left.take(), right.take()
    report.live.append(left.checksum())
    report.rebuilt.append(right.checksum())


def rebuild(
    store: ChainStore,
    projection: Projection,
    *,
    batch_size: int = BATCH_SIZE,
    on_progress: Callable[[int, int], None] | None = None,
    max_differences: int = 1000,
) -> RebuildReport:
    """Replay the ledger into fresh scratch copies of ``projection``'s tables, up to the
    position the live view is at, and compare the two row by row."""
    name = tracking_name(projection.name)
    with store.view_session() as session:
        session.use_scratch(projection.tables)
        done = -1  # the last position replayed into the scratch tables
        while True:
            target = session.tracked(name)
            goal = -1 if target is None else target
            if goal < done:  # the live view was reset meanwhile: start again
                with session.transaction(snapshot=True):
                    session.clear(projection.tables)
                done = -1
            while done < goal:
                records = store.select_records(
                    done + 1, min(goal, done + batch_size), (), batch_size
                )
                # Scratch tables only: no write lock on the live database is needed.
                with session.transaction(snapshot=True):
                    apply_records(session, [projection], records)
                done = records[-1].position
                if on_progress is not None:
                    on_progress(done + 1, goal + 1)
            with session.transaction(snapshot=True):
                if session.tracked(name) != target:
                    continue  # the live view moved on: replay the rest, then compare
                report = RebuildReport(projection.name, target)
                for table in projection.tables:
                    _compare(
                        table,
                        session.scan(table),
                        session.scan(table, scratch=True),
                        report,
                        max_differences,
                    )
                return report


def replace_live(
    store: ChainStore,
    projection: Projection,
    position: int | None,
    *,
    batch_size: int = BATCH_SIZE,
    on_progress: Callable[[int, int], None] | None = None,
) -> None:
    """Empty ``projection``'s live tables and replay the ledger into them up to
    ``position`` (where a rebuild compared them), in one transaction: a reader sees the
    old view or the new one. Refuses, changing nothing, if a runner moved the view on."""
    name = tracking_name(projection.name)
    goal = -1 if position is None else position
    with store.view_session() as session, session.transaction():
        if not session.advance(name, position, goal):  # holds the view until commit
            raise ProjectionError(
                f"projection {projection.name} moved past position {goal} meanwhile; "
                "nothing was replaced: run the rebuild again"
            )
        session.clear(projection.tables)
        done = -1
        while done < goal:
            records = store.select_records(done + 1, min(goal, done + batch_size), (), batch_size)
            apply_records(session, [projection], records)
            done = records[-1].position
            if on_progress is not None:
                on_progress(done + 1, goal + 1)
