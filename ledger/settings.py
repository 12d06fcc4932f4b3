"""Settings read from the environment, with their defaults (README, "Configuration")."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from .errors import ConfigurationError

__all__ = ["DEFAULT_DATABASE_URL", "ENV_VARS", "Settings", "redact_url"]

_N = TypeVar("_N", int, float)

DEFAULT_DATABASE_URL = "sqlite:///./regledger.db"

# Every variable the ledger reads; docker-compose.yml is checked against this list.
ENV_VARS = (
    "REGLEDGER_DATABASE_URL",
    "REGLEDGER_MAX_EVENT_BYTES",
    "REGLEDGER_POOL_SIZE",
    "REGLEDGER_LOCK_TIMEOUT",
    "REGLEDGER_LOG_ORIGIN",
    "REGLEDGER_SIGNING_KEY",
)


@dataclass(frozen=True)
class Settings:
    """Where the ledger lives and the limits it enforces.

    >>> Settings.from_env({"REGLEDGER_DATABASE_URL": "sqlite:///x.db"}).backend
    'sqlite'
    """

    database_url: str = DEFAULT_DATABASE_URL
    max_event_bytes: int = 1_048_576
    pool_size: int = 8
    lock_timeout_s: float = 30.0
    log_origin: str = "regledger.invalid/ledger"

    @property
    def backend(self) -> str:
        if self.database_url.startswith(("postgresql://", "postgres://")):
            return "postgres"
        if self.database_url.startswith("sqlite:///"):
            return "sqlite"
        raise ConfigurationError(
            f"REGLEDGER_DATABASE_URL={self.database_url!r} is neither postgresql://... "
            "nor sqlite:///PATH; set it to one of those"
        )

    @property
    def sqlite_path(self) -> str:
        return self.database_url.removeprefix("sqlite:///")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        settings = cls(
            database_url=env.get("REGLEDGER_DATABASE_URL") or DEFAULT_DATABASE_URL,
            max_event_bytes=_number(env, "REGLEDGER_MAX_EVENT_BYTES", int, 1_048_576),
            pool_size=_number(env, "REGLEDGER_POOL_SIZE", int, 8),
            lock_timeout_s=_number(env, "REGLEDGER_LOCK_TIMEOUT", float, 30.0),
            log_origin=env.get("REGLEDGER_LOG_ORIGIN") or "regledger.invalid/ledger",
        )
        settings.backend  # noqa: B018 - validates the URL early
        return settings


def _number(env: Mapping[str, str], name: str, kind: type[_N], default: _N) -> _N:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number; unset it or give one") from None
    if value <= 0:
        raise ConfigurationError(f"{name}={raw!r} must be positive")
    return value


def redact_url(url: str) -> str:
    """The URL without its password, fit for messages and reports.

    >>> redact_url("postgresql://app:secret@db:5432/ledger")
    'postgresql://app:***@db:5432/ledger'
    """
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"
