"""The ledger store: hash-chained, append-only event recording on PostgreSQL and SQLite."""

from __future__ import annotations

from .chain import ChainFault, ChainHead, FaultKind, LedgerRecord, first_fault, seal
from .errors import (
    ConfigurationError,
    InvalidEventError,
    LedgerError,
    MigrationError,
    StoreUnavailableError,
)
from .factory import PERSISTENCE_MODULE, LedgerFactory, open_store
from .settings import Settings
from .store import ChainStore

__all__ = [
    "PERSISTENCE_MODULE",
    "ChainFault",
    "ChainHead",
    "ChainStore",
    "ConfigurationError",
    "FaultKind",
    "InvalidEventError",
    "LedgerError",
    "LedgerFactory",
    "LedgerRecord",
    "MigrationError",
    "Settings",
    "StoreUnavailableError",
    "first_fault",
    "open_store",
    "seal",
]
