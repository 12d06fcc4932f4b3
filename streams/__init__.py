"""Stream processing beside the ledger, on a real Kafka-protocol broker.

- ``settings``: ``REGLEDGER_BROKER_URL``, ``REGLEDGER_STREAMS_GROUP`` and the ledger's.
- ``broker``: the bundled Tansu broker (tests, embedded default) or the configured one.
- ``codecs``: the ``ledger.events`` message schema, checked field by field (pure).
- ``relay``: ledger -> ``ledger.events`` at least once, and the consumer-side
  ``ContinuityChecker`` that de-duplicates by position and checks every link.
- ``topics``: every worker topic, created with one partition before anyone subscribes.
- ``messages``: a consumed record and the dead-letter Rejection of one a worker cannot use.
- ``ingestion``: ``audit.*`` -> the ledger through the domain, idempotent by source event id.
- ``slo`` (pure) and ``slo_store``: SLIs, burn-rate alerts; ``slo_windows`` and breaches.
- ``guard`` and ``guard_book`` (pure), ``guard_worker``: automated rollbacks in the ledger.
- ``app`` and ``agents``: the Faust application factory and one app per worker role
  (imported on their own: they load Faust).
"""

from __future__ import annotations

from .broker import BrokerStartError, broker_url, bundled_broker
from .codecs import LedgerMessage, StreamCodecError, decode_ledger_event, encode_ledger_event
from .relay import (
    LEDGER_EVENTS,
    RELAY_NAME,
    ContinuityChecker,
    ContinuityError,
    KafkaSender,
    Relay,
    RelayBatch,
    RelayConflictError,
    RelayError,
)
from .settings import StreamSettings

__all__ = [
    "LEDGER_EVENTS",
    "RELAY_NAME",
    "BrokerStartError",
    "ContinuityChecker",
    "ContinuityError",
    "KafkaSender",
    "LedgerMessage",
    "Relay",
    "RelayBatch",
    "RelayConflictError",
    "RelayError",
    "StreamCodecError",
    "StreamSettings",
    "broker_url",
    "bundled_broker",
    "decode_ledger_event",
    "encode_ledger_event",
]
