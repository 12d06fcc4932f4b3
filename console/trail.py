"""The audit trail application on the ledger the settings name."""

from __future__ import annotations

from domain.application import AuditTrail
from ledger import Settings
from ledger.factory import application_env

__all__ = ["open_trail"]


def open_trail(settings: Settings) -> AuditTrail:
    """An ``AuditTrail`` recording into ``settings.database_url`` (migrated beforehand).

    Close it with ``trail.close()``.
    """
    return AuditTrail(env=application_env(settings))
