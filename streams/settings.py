"""Settings of the stream processors, read from the environment with their defaults.

The streams read the ledger, so they carry the ledger's own settings too (one
environment configures both). A malformed value raises ``ConfigurationError`` naming
the variable and the value, as ``ledger.settings`` does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ledger.errors import ConfigurationError
from ledger.settings import Settings

__all__ = [
    "DEFAULT_GROUP",
    "DEFAULT_REBALANCE_TIMEOUT",
    "ROLES",
    "STREAM_ENV_VARS",
    "StreamSettings",
    "bootstrap_servers",
]

DEFAULT_GROUP = "regledger"

# Every variable the streams read beyond the ledger's (ledger.settings.ENV_VARS).
STREAM_ENV_VARS = (
    "REGLEDGER_BROKER_URL",
    "REGLEDGER_STREAMS_GROUP",
    "REGLEDGER_STREAMS_REBALANCE_TIMEOUT",
    "REGLEDGER_INDICATORS_CONFIG",
    "REGLEDGER_STREAMS_LOG_LEVEL",
)
LOG_LEVELS = ("debug", "info", "warning", "error")
# The worker roles, each its own consumer group (see StreamSettings.group_of).
ROLES = ("relay", "ingestion", "slo", "guard", "indicators")
DEFAULT_REBALANCE_TIMEOUT = 60.0  # seconds: Faust's own default

_HOST_PORT = re.compile(r"^(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})$")
# Kafka's own rule for group ids and topic names: these characters, at most 249 of them.
_GROUP = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


@dataclass(frozen=True)
class StreamSettings:
    """Where the broker is, which consumer group the processors join, and the ledger.

    >>> s = StreamSettings.from_env({"REGLEDGER_BROKER_URL": "kafka://127.0.0.1:9092"})
    >>> s.broker_url, s.group, s.ledger.backend
    ('kafka://127.0.0.1:9092', 'regledger', 'sqlite')
    """

    broker_url: str | None = None  # None: no broker configured (the bundled one, in tests)
    group: str = DEFAULT_GROUP
    ledger: Settings = field(default_factory=Settings)
    # How long a consumer group waits for members when one joins or leaves (also the
    # session timeout). Every (re)start of a worker waits this long; tests set ~1 s.
    rebalance_timeout: float = DEFAULT_REBALANCE_TIMEOUT
    # The indicator catalogue with its per-symbol parameters (a TOML file); None: the one
    # shipped in the package, streams/indicators.toml.
    indicators_config: str | None = None
    # How much the workers log (Faust's and ours): debug, info, warning (default) or error.
    log_level: str = "warning"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StreamSettings:
        env = os.environ if env is None else env
        raw_url = env.get("REGLEDGER_BROKER_URL") or None
        if raw_url is not None:
            bootstrap_servers(raw_url)  # validates it
        group = env.get("REGLEDGER_STREAMS_GROUP")
        if group is None or group == "":
            group = DEFAULT_GROUP
        elif not _GROUP.match(group):
            raise ConfigurationError(
                f"REGLEDGER_STREAMS_GROUP={group!r} is not a Kafka group id; use 1 to 249 "
                "letters, digits, '.', '_' or '-' (default: regledger)"
            )
        raw_timeout = env.get("REGLEDGER_STREAMS_REBALANCE_TIMEOUT") or ""
        timeout = DEFAULT_REBALANCE_TIMEOUT
        if raw_timeout:
            try:
                timeout = float(raw_timeout)
            except ValueError:
                timeout = -1.0
            if not 0.5 <= timeout <= 3600:
                raise ConfigurationError(
                    f"REGLEDGER_STREAMS_REBALANCE_TIMEOUT={raw_timeout!r} is not a number of "
                    "seconds from 0.5 to 3600 (default 60)"
                )
        indicators_config = env.get("REGLEDGER_INDICATORS_CONFIG") or None
        if indicators_config is not None and not os.path.isfile(indicators_config):
            raise ConfigurationError(
                f"REGLEDGER_INDICATORS_CONFIG={indicators_config!r} is not a file; give the "
                "path of an indicators TOML file (or unset it for the shipped catalogue)"
            )
        log_level = (env.get("REGLEDGER_STREAMS_LOG_LEVEL") or "warning").strip().lower()
        if log_level not in LOG_LEVELS:
            raise ConfigurationError(
                f"REGLEDGER_STREAMS_LOG_LEVEL={env['REGLEDGER_STREAMS_LOG_LEVEL']!r} is not one "
                f"of {', '.join(LOG_LEVELS)} (default warning)"
            )
        return cls(
            broker_url=raw_url,
            group=group,
            ledger=Settings.from_env(env),
            rebalance_timeout=timeout,
            indicators_config=indicators_config,
            log_level=log_level,
        )

    def group_of(self, role: str) -> str:
        """The consumer group (Faust app id) of worker ``role``.

        >>> StreamSettings().group_of("slo")
        'regledger.slo'
        """
        if role not in ROLES:
            raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
        return f"{self.group}.{role}"

    def app_timeouts(self) -> dict[str, float]:
        """``make_app`` keyword arguments for :attr:`rebalance_timeout`.

        >>> StreamSettings(rebalance_timeout=1.0).app_timeouts()["broker_heartbeat_interval"]
        0.1
        """
        return {
            "broker_rebalance_timeout": self.rebalance_timeout,
            "broker_session_timeout": self.rebalance_timeout,
            "broker_heartbeat_interval": min(3.0, self.rebalance_timeout / 10),
        }


def bootstrap_servers(broker_url: str) -> str:
    """The ``host:port[,host:port...]`` list aiokafka takes, from a ``kafka://`` URL.

    >>> bootstrap_servers("kafka://k1:9092,k2:9092")
    'k1:9092,k2:9092'
    """
    fix = "set REGLEDGER_BROKER_URL to kafka://HOST:PORT[,HOST:PORT...]"
    scheme, sep, rest = broker_url.partition("://")
    if not sep or scheme != "kafka":
        raise ConfigurationError(f"REGLEDGER_BROKER_URL={broker_url!r} is not kafka://...; {fix}")
    servers = rest.rstrip("/").split(",")
    for server in servers:
        match = _HOST_PORT.match(server)
        if match is None or not 0 < int(match["port"]) < 65536:
            raise ConfigurationError(
                f"REGLEDGER_BROKER_URL={broker_url!r}: {server!r} is not HOST:PORT "
                f"with a port from 1 to 65535; {fix}"
            )
    return ",".join(servers)
