"""Errors raised by the ledger store.

Exception tree::

    LedgerError                        root of everything raised here
    ├── ConfigurationError             a setting is missing or malformed
    ├── InvalidEventError(ValueError)  an event offered for append is malformed; nothing stored
    ├── MigrationError                 a migration is missing, changed after it ran, or failed
    ├── StoreUnavailableError          the database cannot be reached
    ├── StorePermissionError           the connecting role lacks a privilege
    ├── AppendTimeoutError             another writer held the append lock too long; nothing stored
    └── DuplicateSourceError(IntegrityError)  a source event id is already recorded; nothing stored

Conflicting aggregate versions raise eventsourcing's ``IntegrityError`` (so an
unchanged ``eventsourcing.application.Application`` behaves as it does on the
stock recorders); nothing of the rejected batch is stored.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventsourcing.persistence import IntegrityError

__all__ = [
    "AppendTimeoutError",
    "ConfigurationError",
    "InvalidEventError",
    "DuplicateSourceError",
    "LedgerError",
    "MigrationError",
    "StorePermissionError",
    "StoreUnavailableError",
]


class LedgerError(Exception):
    """Root of the ledger's own exceptions."""


class ConfigurationError(LedgerError):
    """A setting is missing or malformed."""


class InvalidEventError(LedgerError, ValueError):
    """An event offered for append is malformed. Nothing of its batch was stored.

    >>> InvalidEventError(3, "topic", "", "must be a non-empty string").field
    'topic'
    """

    def __init__(self, index: int, field: str, value: object, problem: str) -> None:
        self.index = index
        self.field = field
        self.value = value
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(
            f"event {index} of the batch: {field}={shown} {problem}; "
            "nothing of the batch was stored"
        )


class DuplicateSourceError(LedgerError, IntegrityError):
    """A source event id of the batch is already in the ledger; nothing was stored.

    Ingestion is idempotent by source event id: ``ledger_sources`` holds each id once,
    written in the same transaction as its events.
    """

    def __init__(self, source_event_ids: Sequence[str], detail: str) -> None:
        self.source_event_ids = tuple(source_event_ids)
        super().__init__(
            f"{detail}: a source event id of the batch is already recorded; "
            "nothing of the batch was stored"
        )


class MigrationError(LedgerError):
    """A migration is missing, was changed after it was applied, or failed."""


class StoreUnavailableError(LedgerError):
    """The database cannot be reached or opened."""


class AppendTimeoutError(LedgerError):
    """The append lock was not granted within REGLEDGER_LOCK_TIMEOUT; nothing was stored."""


class StorePermissionError(LedgerError):
    """The connecting role lacks a privilege the operation needs (e.g. DDL as the writer)."""
