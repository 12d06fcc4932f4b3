"""The Faust application the stream processors run in, configured once for every broker.

At-least-once processing: the bundled Tansu broker cannot hand out producer ids
(InitProducerId), so Faust's ``exactly_once`` (transactions) cannot run on it, and the
same code must run there and on Kafka. Sinks are idempotent instead: a consumer of
``ledger.events`` de-duplicates by position (``streams.relay.ContinuityChecker``).

Production timeouts are Faust's defaults; tests pass small ones, or every consumer
group join waits out a long rebalance timeout.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import faust
from faust.serializers import codecs

from .codecs import LedgerMessage, decode_ledger_event, encode_message

__all__ = ["LEDGER_EVENT_CODEC", "LedgerEventCodec", "make_app"]

LEDGER_EVENT_CODEC = "ledger_event"


class LedgerEventCodec(codecs.Codec):
    """``value_serializer="ledger_event"``: ``ledger.events`` values as :class:`LedgerMessage`."""

    def _loads(self, s: bytes) -> Any:
        return decode_ledger_event(s)

    def _dumps(self, s: Any) -> bytes:
        if not isinstance(s, LedgerMessage):
            raise TypeError(f"ledger.events values are LedgerMessage, not {type(s).__name__}")
        return encode_message(s)


codecs.register(LEDGER_EVENT_CODEC, LedgerEventCodec())


def make_app(
    broker_url: str,
    *,
    id: str = "regledger",  # Faust's own name for the application id
    topic_partitions: int = 1,
    datadir: str | Path | None = None,
    broker_rebalance_timeout: float = 60.0,
    broker_session_timeout: float = 60.0,
    broker_heartbeat_interval: float = 3.0,
    **options: Any,
) -> faust.App:
    """A Faust app on ``broker_url`` (``kafka://HOST:PORT``); ``id`` is its consumer group.

    Tables live in memory (their changelog topics make them durable); ``datadir``
    defaults to a fresh temporary directory per app, removed with it. ``options`` go to
    ``faust.App`` and override these settings.

    >>> app = make_app("kafka://127.0.0.1:9092", id="ingest")
    >>> app.conf.processing_guarantee.value, app.conf.topic_partitions
    ('at_least_once', 1)
    """
    scratch = datadir is None
    if datadir is None:
        datadir = tempfile.mkdtemp(prefix=f"regledger-faust-{id}-")
    settings: dict[str, Any] = {
        "broker": broker_url,
        "processing_guarantee": "at_least_once",
        "topic_partitions": topic_partitions,
        "topic_allow_declare": True,
        "consumer_auto_offset_reset": "earliest",
        "web_enabled": False,
        "datadir": str(datadir),
        "store": "memory://",
        "broker_rebalance_timeout": broker_rebalance_timeout,
        "broker_session_timeout": broker_session_timeout,
        "broker_heartbeat_interval": broker_heartbeat_interval,
        "producer_acks": -1,  # "all"
    }
    settings.update(options)
    app = faust.App(id, **settings)
    if scratch:  # removed with the app, or at exit
        weakref.finalize(app, shutil.rmtree, str(datadir), True)
    return app
