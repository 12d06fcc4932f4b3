"""Option parsing the commands share: settings from the environment, times given by people."""

from __future__ import annotations

from datetime import UTC, datetime

from ledger import LedgerError, Settings, open_store
from ledger.settings import redact_url

from .errors import CommandError

__all__ = ["load_settings", "require_schema", "when"]


def load_settings() -> Settings:
    """The settings from the environment; a bad one is a one-line CommandError."""
    try:
        return Settings.from_env()
    except LedgerError as exc:
        raise CommandError(str(exc)) from exc


def when(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 time with a zone, in UTC, for ``option``; None when not given.

    >>> when("2026-03-02T10:30:00+01:00", "--since").isoformat()
    '2026-03-02T09:30:00+00:00'
    """
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"{option} {value!r} is not an ISO 8601 time; give e.g. 2026-03-02T09:30:00Z"
        ) from None
    if moment.tzinfo is None:
        raise CommandError(f"{option} {value!r} has no time zone; add Z for UTC")
    return moment.astimezone(UTC)


def require_schema(settings: Settings) -> None:
    """Refuse, in one line with the fix, to work on a database with pending migrations."""
    with open_store(settings) as store:
        pending = store.pending_migrations()
    if pending:
        raise CommandError(
            f"{redact_url(settings.database_url)} has {len(pending)} pending migration(s) "
            f"(first: {pending[0].name}); run `regledger db migrate`"
        )
