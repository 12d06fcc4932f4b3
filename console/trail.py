"""The audit trail application on the ledger the settings name."""

from __future__ import annotations

from domain.application import AuditTrail
from ledger import PERSISTENCE_MODULE, Settings

__all__ = ["open_trail"]


def open_trail(settings: Settings) -> AuditTrail:
    """An ``AuditTrail`` recording into ``settings.database_url`` (migrated beforehand).

    Close it with ``trail.close()``.
    """
    return AuditTrail(
        env={
            "PERSISTENCE_MODULE": PERSISTENCE_MODULE,
            "REGLEDGER_DATABASE_URL": settings.database_url,
            "REGLEDGER_MAX_EVENT_BYTES": str(settings.max_event_bytes),
            "REGLEDGER_POOL_SIZE": str(settings.pool_size),
            "REGLEDGER_LOCK_TIMEOUT": str(settings.lock_timeout_s),
        }
    )
