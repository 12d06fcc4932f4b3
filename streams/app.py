"""The Faust application the stream processors run in, configured once for every broker.

At-least-once processing: the bundled Tansu broker cannot hand out producer ids
(InitProducerId), so Faust's ``exactly_once`` (transactions) cannot run on it, and the
same code must run there and on Kafka. Sinks are idempotent instead: a consumer of
``ledger.events`` de-duplicates by position (``streams.relay.ContinuityChecker``).

Production timeouts are Faust's defaults; tests pass small ones, or every consumer
group join waits out a long rebalance timeout.

The app is Faust's with three defects of its recovery after a (re)start mended, found by
SIGKILL/restart loops of the indicators worker; each lost records without a trace (see
:class:`_App`). They hook faust-streaming 0.15 and aiokafka 0.14 internals: check them
on an upgrade (tests/integration/test_stream_recovery.py).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import weakref
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from faust.serializers import codecs
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

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

log = logging.getLogger("regledger.streams")


async def _log_end_offsets(
    servers: str,
    listed: Callable[..., Awaitable[Mapping[Any, int]]],
    *partitions: Any,
    timeout: float = 10.0,
) -> dict[Any, int]:
    """``listed(*partitions)`` (ListOffsets, latest), raised to the high watermark that a
    fetch from the listed end - 1 reports.

    Faust's table recovery reads each changelog up to these offsets. The bundled Tansu
    (0.6.0) lists the base offset of a partition's last record batch + 1, not its end,
    so recovery stopped before the changelog's last batch -- the newest ``open|<symbol>``
    entries -- and a restarted indicators worker resumed from stale bars at the
    committed offset (missing and wrong snapshots). Fetch responses carry the right high
    watermark; on Kafka both agree and this changes nothing.
    """
    ends = dict(await listed(*partitions))
    probe_tps = {TopicPartition(tp.topic, tp.partition): tp for tp in partitions if ends.get(tp)}
    if not probe_tps:
        return ends
    probe = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)
    try:
        await probe.start()
        probe.assign(list(probe_tps))
        for ktp, tp in probe_tps.items():
            probe.seek(ktp, max(ends[tp] - 1, 0))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            pending = [k for k in probe_tps if probe.highwater(k) is None]
            if not pending:
                break
            await probe.getmany(*pending, timeout_ms=200)
        for ktp, tp in probe_tps.items():
            high = probe.highwater(ktp)
            if high is not None and high > ends[tp]:
                log.info(
                    "%s: the broker lists end offset %d, its fetch high watermark is %d",
                    tp, ends[tp], high,
                )  # fmt: skip
                ends[tp] = high
    except Exception as exc:  # the listed offsets, as before
        log.warning("could not check the end offsets of %s: %r", sorted(probe_tps), exc)
    finally:
        await probe.stop()
    return ends


class _FlowControl(FlowControlEvent):
    """Faust's flow control, except that resuming a flow that is not suspended keeps what
    the stream queues hold.

    ``FlowControlEvent.resume`` empties every stream queue. After a rebalance, Faust's
    table recovery resumes the flow to read the changelogs, and resumes it again once
    done (``Recovery.on_recovery_completed``), after it has resumed the stream partitions
    and while it awaits their seek to the committed offsets: records fetched meanwhile
    (past the consumer's read offset and position) were in the queues and were thrown
    away, never fetched again by this process. If they were the last on the topic the
    agent waited for ticks forever; one lost alone was even committed over. A rebalance
    suspends the flow and clears the queues itself (``App._on_partitions_revoked``), so
    the first resume after it has nothing stale to drop.
    """

    def resume(self) -> None:
        if self.is_active():
            return
        super().resume()


def _fetch_from_snapshot(getmany: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``Consumer._getmany`` given a copy of the active partitions, not Faust's live set.

    aiokafka's ``fetched_records(partitions)`` reads that set when records arrive, and an
    empty set means "every partition". Between the end of a changelog's recovery (which
    pauses it) and the resumption of the stream partitions, Faust's set is empty: the
    ticks were then handed over, skipped by ``Consumer.getmany`` (not active) with the
    fetch position already past them, and never fetched again in that process.
    """

    async def _getmany(active_partitions: Any, timeout: float) -> Any:
        if active_partitions is not None:
            active_partitions = set(active_partitions)
        return await getmany(active_partitions=active_partitions, timeout=timeout)

    return _getmany


class _App(faust.App):
    """``faust.App`` with three recovery defects mended (each one made a restarted worker
    lose records silently; tests/integration/test_stream_recovery.py and the kill/restart
    tests): its consumer's ``highwaters`` (the end offsets table recovery reads up to) are
    checked against a fetch (:func:`_log_end_offsets`); each fetch filters on a copy of
    the active partitions (:func:`_fetch_from_snapshot`); its flow control does not empty
    the stream queues of a flow already running (:class:`_FlowControl`)."""

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return _FlowControl(loop=self.loop)

    def _new_consumer(self) -> Any:
        consumer: Any = super()._new_consumer()
        servers = ",".join(f"{url.host}:{url.port or 9092}" for url in self.conf.broker)
        # On this one instance: the driver's Consumer class is chosen by the transport.
        consumer.highwaters = partial(_log_end_offsets, servers, consumer.highwaters)
        consumer._getmany = _fetch_from_snapshot(consumer._getmany)
        return consumer


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
    app = _App(id, **settings)
    if scratch:  # removed with the app, or at exit
        weakref.finalize(app, shutil.rmtree, str(datadir), True)
    return app
