"""Every topic the workers read or write, and their creation before any client asks.

Topics are created explicitly, with one partition each, before a worker starts: a broker
that auto-creates topics (Tansu creates one with 4 partitions on the first metadata
request) would otherwise pick the partition count for us, and ``ledger.events`` must keep
the ledger's total order on one partition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import for_code  # type: ignore[import-untyped]

from .settings import bootstrap_servers

__all__ = [
    "AUDIT_DLQ",
    "AUDIT_TOPICS",
    "DEPLOYMENT_STOPS",
    "INDICATOR_VALUES",
    "LEDGER_EVENTS",
    "MARKET_DLQ",
    "MARKET_TICKS",
    "MODEL_OUTCOMES",
    "SLO_ALERTS",
    "TELEMETRY_DLQ",
    "TELEMETRY_REQUESTS",
    "TELEMETRY_RESOURCES",
    "TopicError",
    "WORKER_TOPICS",
    "create_missing_topics",
    "ensure_topics",
]

LEDGER_EVENTS = "ledger.events"
AUDIT_TOPICS = ("audit.trading", "audit.risk", "audit.changes", "audit.activity", "audit.models")
AUDIT_DLQ = "audit.dlq"
TELEMETRY_REQUESTS = "telemetry.requests"
TELEMETRY_RESOURCES = "telemetry.resources"
MODEL_OUTCOMES = "model.outcomes"
DEPLOYMENT_STOPS = "deployments.stop"
TELEMETRY_DLQ = "telemetry.dlq"
SLO_ALERTS = "slo.alerts"
MARKET_TICKS = "market.ticks"
MARKET_DLQ = "market.dlq"
INDICATOR_VALUES = "indicators.values"

WORKER_TOPICS = (
    LEDGER_EVENTS,
    *AUDIT_TOPICS,
    AUDIT_DLQ,
    TELEMETRY_REQUESTS,
    TELEMETRY_RESOURCES,
    MODEL_OUTCOMES,
    DEPLOYMENT_STOPS,
    TELEMETRY_DLQ,
    SLO_ALERTS,
    MARKET_TICKS,
    MARKET_DLQ,
    INDICATOR_VALUES,
)

_TOPIC_EXISTS = 36  # Kafka error code TOPIC_ALREADY_EXISTS


class TopicError(RuntimeError):
    """A topic could not be created, or exists with the wrong number of partitions."""


async def create_missing_topics(
    servers: str, topics: Iterable[str], *, timeout: float = 30.0, replication_factor: int = 1
) -> list[str]:
    """Create those of ``topics`` that do not exist, one partition each; return them.

    An existing topic with more than one partition is refused: the workers' order and
    continuity rules need exactly one.
    """
    wanted = list(dict.fromkeys(topics))
    admin = AIOKafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(t, num_partitions=1, replication_factor=replication_factor)
                    for t in missing
                ]  # fmt: skip
            )
            for name, code, *_rest in response.topic_errors:
                if code not in (0, _TOPIC_EXISTS):
                    raise TopicError(f"could not create topic {name}: {for_code(code)()}")
        described = await admin.describe_topics([t for t in wanted if t in existing])
        for topic in described:
            count = len(topic.get("partitions", ()))
            if count != 1:
                raise TopicError(
                    f"topic {topic['topic']} has {count} partitions; the workers need exactly "
                    "1 to keep their order: recreate it with one partition"
                )
        return missing
    finally:
        await admin.close()


def ensure_topics(broker_url: str, topics: Iterable[str] = WORKER_TOPICS) -> list[str]:
    """:func:`create_missing_topics` from synchronous code (a thread of its own)."""
    servers = bootstrap_servers(broker_url)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, create_missing_topics(servers, topics)).result()
