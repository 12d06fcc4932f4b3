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

__all__ = ["DEFAULT_GROUP", "STREAM_ENV_VARS", "StreamSettings", "bootstrap_servers"]

DEFAULT_GROUP = "regledger"

# Every variable the streams read beyond the ledger's (ledger.settings.ENV_VARS).
STREAM_ENV_VARS = ("REGLEDGER_BROKER_URL", "REGLEDGER_STREAMS_GROUP")

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
        return cls(broker_url=raw_url, group=group, ledger=Settings.from_env(env))


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
