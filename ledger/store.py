"""The chain store: what every backend provides to the recorders, ``verify`` and ``migrate``.

Only the backend modules (``postgres.py``, ``sqlite.py``) touch a database driver.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from hashlib import sha256
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from eventsourcing.persistence import StoredEvent, Tracking

from . import tree
from .chain import ChainFault, ChainHead, LedgerRecord, Link, diagnose_mismatch
from .errors import MigrationError
from .validation import BatchValidator
from .views import ViewSession

__all__ = ["AppliedMigration", "ChainStore", "Migration", "migration_files"]

T = TypeVar("T")


@dataclass(frozen=True)
class Migration:
    """One numbered ``.sql`` file of ``migrations/BACKEND/``."""

    version: int
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    sha256: str
    applied_at: str


def _migrations_root() -> Traversable:
    # A wheel carries them as ledger/_migrations; a source checkout has them at the top.
    packaged = resources.files("ledger").joinpath("_migrations")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "migrations"


def migration_files(backend: str) -> list[Migration]:
    """The migrations of ``backend`` in order, checked to be numbered 1, 2, 3, ...

    >>> [m.version for m in migration_files("sqlite")][:2]
    [1, 2]
    """
    folder = _migrations_root().joinpath(backend)
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        number, _, rest = entry.name.partition("_")
        if not number.isdigit() or not rest:
            raise MigrationError(
                f"migrations/{backend}/{entry.name} is not named NNNN_description.sql; rename it"
            )
        found.append(Migration(int(number), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"migrations/{backend}: expected migration {expected:04d} but found "
                f"{migration.name}; migrations are numbered without gaps"
            )
    return found


class ChainStore(ABC):
    """A hash-chained, append-only event log in one database."""

    backend: str
    url: str

    # --- appending -------------------------------------------------------------------

    @abstractmethod
    def append(
        self,
        events: Sequence[StoredEvent],
        validator: BatchValidator,
        tracking: Tracking | None = None,
        sources: Sequence[tuple[str, int]] = (),
    ) -> list[int]:
        """Validate ``events`` and chain them onto the head atomically; return positions.

        ``sources`` are (source event id, index of its first event in ``events``): each id
        goes into ``ledger_sources`` with that event's position, in the same transaction.
        An id already there raises ``DuplicateSourceError`` and nothing is stored.

        Raises ``InvalidEventError`` for a malformed event, and eventsourcing's
        ``IntegrityError`` when an (originator_id, version) is already recorded or
        ``tracking`` is not newer than the recorded one; nothing of the batch is
        stored then. A backend may validate chunk by chunk while it writes.
        """

    # --- reading ---------------------------------------------------------------------

    @abstractmethod
    def source_positions(self, source_event_ids: Sequence[str]) -> dict[str, int]:
        """The ledger position of each of ``source_event_ids`` already recorded."""

    @abstractmethod
    def select_events(
        self,
        originator_id: str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """One aggregate's events, by version."""

    @abstractmethod
    def select_records(
        self, first: int, last: int | None, topics: Sequence[str], limit: int
    ) -> list[LedgerRecord]:
        """Rows from position ``first`` to ``last`` (inclusive), optionally of some topics."""

    @abstractmethod
    def records_of(self, originator_id: str) -> list[LedgerRecord]:
        """One aggregate's rows, by version, with their positions and hashes."""

    @abstractmethod
    def max_position(self) -> int | None:
        """The last position, or None for an empty log."""

    @abstractmethod
    def record_at(self, position: int) -> LedgerRecord | None:
        """The row at ``position``."""

    @abstractmethod
    def position_of_hash(self, digest: bytes) -> int | None:
        """The first position whose stored hash is ``digest`` (slow: failure paths only)."""

    @abstractmethod
    def position_of_prev_hash(self, digest: bytes) -> int | None:
        """The first position whose stored ``prev_hash`` is ``digest`` (failure paths only)."""

    @abstractmethod
    def links(self, first: int, last: int) -> AbstractContextManager[Iterator[Link]]:
        """Stream the links of positions ``first`` to ``last`` in constant memory."""

    def head(self) -> ChainHead:
        """The chain head as stored (not verified)."""
        last = self.max_position()
        if last is None:
            return ChainHead()
        return self.head_after(last)

    def head_after(self, position: int) -> ChainHead:
        """The head just after ``position`` as stored: a walk from ``position + 1`` starts here."""
        if position < 0:
            return ChainHead()
        record = self.record_at(position)
        if record is None:
            return ChainHead(position + 1)
        return ChainHead(position + 1, record.hash, record.recorded_at_us)

    def diagnose(self, position: int) -> ChainFault:
        """Explain a hash mismatch at ``position``: altered, or moved from elsewhere."""
        record = self.record_at(position)
        assert record is not None, position
        return diagnose_mismatch(
            record, self.position_of_hash, self.position_of_prev_hash, self.record_at
        )

    # --- the Merkle tree (ledger/tree.py) ------------------------------------------------

    @abstractmethod
    def stored_hashes(self, level: int, start: int, end: int) -> list[bytes]:
        """Level 0: event hashes of positions [start, end); level 8k: stored tree nodes."""

    def tree_root(self, size: int) -> bytes:
        """The RFC 9162 tree head of the first ``size`` events."""
        return tree.tree_root(tree.CachedLevels(self.stored_hashes), size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The proof that event ``index`` is in the tree of the first ``size`` events."""
        return tree.inclusion_proof(tree.CachedLevels(self.stored_hashes), index, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The proof that the tree of ``old_size`` events is a prefix of ``new_size``'s."""
        return tree.consistency_proof(tree.CachedLevels(self.stored_hashes), old_size, new_size)

    @abstractmethod
    def record_checkpoint(self, size: int, root: bytes, note: str) -> None:
        """Store a signed checkpoint note (append-only)."""

    @abstractmethod
    def latest_checkpoint(self) -> str | None:
        """The signed note of the largest checkpoint issued, if any."""

    @abstractmethod
    def backfill_tree(self) -> int:
        """Store the tree nodes missing for events recorded before the tree existed."""

    # --- tracking --------------------------------------------------------------------

    @abstractmethod
    def insert_tracking(self, tracking: Tracking) -> None:
        """Record that ``tracking.application_name`` processed up to its notification id."""

    @abstractmethod
    def max_tracking_id(self, application_name: str) -> int | None:
        """The notification id an application last recorded."""

    # --- read models (projections/) ------------------------------------------------------

    @abstractmethod
    def view_session(self) -> ViewSession:
        """A connection of its own on which view rows and tracking commit together."""

    # --- notification of appends -----------------------------------------------------

    @abstractmethod
    def watch(self, stopped: Callable[[], bool], appended: Callable[[], None]) -> None:
        """Call ``appended()`` after other writers append, until ``stopped()`` is true.

        It is also called once as soon as watching starts, so an append that lands
        between a reader's first read and the start of watching is never missed.
        """

    def follow(
        self,
        stopped: Callable[[], bool],
        catch_up: Callable[[], Iterable[T]],
        on_batch: Callable[[T], object] | None = None,
        idle: float = 1.0,
    ) -> None:
        """Run ``catch_up()`` to the head, then again after each append, until ``stopped()``;
        hand each batch it yields to ``on_batch``. Appends are noticed by ``watch`` (a
        thread); ``idle`` bounds the wait between checks of ``stopped()``."""
        appended = threading.Event()
        watcher = threading.Thread(target=self.watch, args=(stopped, appended.set), daemon=True)
        watcher.start()
        try:
            while not stopped():
                appended.clear()
                for batch in catch_up():
                    if on_batch is not None:
                        on_batch(batch)
                    if stopped():
                        return
                appended.wait(idle)
        finally:
            watcher.join(timeout=5)

    # --- schema ----------------------------------------------------------------------

    @abstractmethod
    def applied_migrations(self) -> list[AppliedMigration]:
        """Migrations recorded in ``regledger_migrations`` (none on a new database)."""

    @abstractmethod
    def apply_migration(self, migration: Migration) -> None:
        """Run one migration and record it, in one transaction."""

    def pending_migrations(self) -> list[Migration]:
        """Migrations not applied yet, after checking applied ones were not changed."""
        applied = {m.version: m for m in self.applied_migrations()}
        pending: list[Migration] = []
        for migration in migration_files(self.backend):
            done = applied.get(migration.version)
            if done is None:
                pending.append(migration)
            elif done.sha256 != migration.sha256:
                raise MigrationError(
                    f"migration {migration.name} was changed after it was applied "
                    f"(recorded sha256 {done.sha256[:12]}..., file {migration.sha256[:12]}...); "
                    "migrations are forward-only: restore the file and add a new migration"
                )
        return pending

    def migrate(self, on_applied: Callable[[Migration], None] | None = None) -> list[Migration]:
        """Apply every pending migration in order; return those applied."""
        applied: list[Migration] = []
        for migration in self.pending_migrations():
            self.apply_migration(migration)
            applied.append(migration)
            if on_applied is not None:
                on_applied(migration)
        if applied:
            self.backfill_tree()  # a log recorded before the tree existed gets its nodes
        return applied

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
