"""The stream workers: one Faust application (one consumer group) per role.

=============  ==========================================  ================================
role           reads                                       writes
=============  ==========================================  ================================
relay          the ledger                                  ``ledger.events``
ingestion      ``audit.trading|risk|changes|activity|       the ledger; ``audit.dlq``
               models``
slo            ``telemetry.requests``                      ``slo_windows``; SLO breaches in
                                                           the ledger; ``slo.alerts``;
                                                           ``telemetry.dlq``
guard          ``ledger.events``, ``telemetry.requests``,  rollbacks in the ledger;
               ``telemetry.resources``,                    ``telemetry.dlq``
               ``model.outcomes``, ``deployments.stop``
indicators     ``market.ticks``                            ``indicator_values``;
                                                           ``indicators.values``;
                                                           ``market.dlq``
=============  ==========================================  ================================

Each role is its own consumer group (``<REGLEDGER_STREAMS_GROUP>.<role>``), so every role
sees every message of the topics it reads, and two processes of one role share them.

Processing is at least once (Faust's ``exactly_once`` needs broker transactions, which the
bundled Tansu broker does not have): a batch's offsets are committed only after its
effects are durable, and every sink is idempotent, so a redelivered batch changes nothing.

* ingestion: the ledger refuses a source event id it already holds (``ledger_sources``,
  written in the append transaction); dead letters may repeat, keyed by their origin
  headers (topic, partition, offset).
* slo: ``slo_windows`` rows and the partition's offset commit together
  (``ledger_tracking``); a breach's ledger id is (SLO, rule, window end).
* guard: the domain refuses a second rollback of a deployment.
* indicators: its changelog table keeps the day's closed bars, the open bars and the last
  offset applied, all sent before the offsets are committed; a redelivered tick is
  skipped, and a bar already in ``indicator_values`` is not written again.
  ``indicators.values`` may repeat a snapshot: consumers keep one per hash.

The synchronous cores (:class:`~streams.ingestion.Ingestor`,
:class:`~streams.slo_store.SloSink`, :class:`~streams.guard_worker.GuardWorker`) do the
database work in one thread per role, off the event loop, batch by batch
(``stream.take_events``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import faust

from ledger.factory import open_store

from .app import LEDGER_EVENT_CODEC, make_app
from .bars import Bar
from .codecs import LedgerMessage
from .guard_worker import GuardWorker, Verdicts
from .indicator_worker import IndicatorBatch, IndicatorCore, bar_key
from .indicators import IndicatorConfig
from .ingestion import Ingestor, IngestResult
from .messages import RawMessage, Rejection
from .relay import KafkaSender, Relay, RelayBatch
from .settings import ROLES, StreamSettings
from .slo_store import SloBatch, SloSink, alert_json
from .topics import (
    AUDIT_DLQ,
    AUDIT_TOPICS,
    DEPLOYMENT_STOPS,
    INDICATOR_VALUES,
    LEDGER_EVENTS,
    MARKET_DLQ,
    MARKET_TICKS,
    MODEL_OUTCOMES,
    SLO_ALERTS,
    TELEMETRY_DLQ,
    TELEMETRY_REQUESTS,
    TELEMETRY_RESOURCES,
)

__all__ = [
    "FAUST_ROLES",
    "ROLES",
    "guard_app",
    "indicators_app",
    "ingestion_app",
    "raw_message",
    "run_faust",
    "run_relay",
    "slo_app",
]

INGEST_BATCH = 1_000
SLO_BATCH = 5_000
GUARD_BATCH = 1_000
TICK_BATCH = 5_000
WITHIN = 0.2  # seconds a batch waits to fill
# The indicators worker sends a 4 KB snapshot and a changelog entry per closed bar, a
# thousand a second or more: its producer batches them (up to 256 KiB, waiting at most
# 2 ms for a batch to fill) rather than one request per message, Faust's default, which
# took a third of the worker's time (bench/indicators.py).
INDICATORS_PRODUCER = {"producer_linger": 0.002, "producer_max_batch_size": 262_144}
log = logging.getLogger("regledger.streams")
_T = TypeVar("_T")


def _raw_topic(app: faust.App, *names: str) -> Any:
    """Topics whose records the worker takes as they are (its cores decode and check them)."""
    return app.topic(
        *names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


def raw_message(event: Any) -> RawMessage:
    """The record under a Faust event, as consumed (its value undecoded)."""
    message = event.message
    return RawMessage(message.topic, message.partition, message.offset, message.key, message.value)


class _Core:
    """A synchronous core used from one thread (SQLite connections are per thread), shared
    by a role's agents, opened on first use and closed when the last agent stops.

    A failure in it (the database down, a conflict) crashes the whole worker, which exits
    non-zero without committing the batch's offsets: a restart redelivers the batch and
    opens the core afresh. An agent that died alone would leave a worker that consumes
    nothing and looks alive.
    """

    def __init__(self, app: faust.App, opener: Callable[[], Any]) -> None:
        self._app = app
        self._opener = opener
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="regledger-core")
        self._value: Any = None
        self._users = 0

    async def call(self, work: Callable[[Any], _T]) -> _T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._run, work)
        except Exception as exc:
            log.error("worker %s stops: %s: %s", self._app.conf.id, type(exc).__name__, exc)
            await self._app.crash(exc)
            raise

    def _run(self, work: Callable[[Any], _T]) -> _T:
        if self._value is None:
            self._value = self._opener()
        return work(self._value)

    def enter(self) -> None:
        self._users += 1

    async def leave(self) -> None:
        self._users -= 1
        if self._users == 0:
            # Shielded: the agent that leaves last is being cancelled as it stops, and the
            # core must still be closed and its thread ended.
            await asyncio.shield(self._close())

    async def _close(self) -> None:
        if self._value is not None:
            await self.call(lambda core: core.close())
            self._value = None
        self._executor.shutdown(wait=True)


async def _dead_letters(topic: Any, rejected: list[Rejection]) -> list[Any]:
    """Send each rejected record to ``topic``; the sends' futures (acknowledged later)."""
    sent = []
    for rejection in rejected:
        log.warning(
            "dead letter %s[%d]@%d: %s",
            rejection.message.topic,
            rejection.message.partition,
            rejection.message.offset,
            rejection.error,
        )
        sent.append(
            await topic.send(
                key=rejection.message.key,
                value=rejection.message.value,
                headers=rejection.headers(),
            )
        )
    return sent


def _app(
    settings: StreamSettings, broker_url: str, role: str, options: dict[str, Any]
) -> faust.App:
    return make_app(
        broker_url, id=settings.group_of(role), **{**settings.app_timeouts(), **options}
    )


# --- ingestion ------------------------------------------------------------------------------


def ingestion_app(settings: StreamSettings, broker_url: str, **options: Any) -> faust.App:
    """``audit.*`` -> the ledger, through the domain application; rejects to ``audit.dlq``."""
    app = _app(settings, broker_url, "ingestion", options)
    source = _raw_topic(app, *AUDIT_TOPICS)
    dlq = _raw_topic(app, AUDIT_DLQ)
    core = _Core(app, lambda: Ingestor(settings.ledger))

    @app.agent(source, name="ingest")
    async def ingest(stream: Any) -> AsyncIterator[IngestResult]:
        core.enter()
        try:
            async for events in stream.take_events(INGEST_BATCH, within=WITHIN):
                batch = [raw_message(e) for e in events]
                result: IngestResult = await core.call(partial(Ingestor.ingest, messages=batch))
                await _dead_letters(dlq, result.rejected)
                log.info(
                    "ingested %d messages: %d recorded (%d events), %d duplicates, %d rejected",
                    result.messages, result.recorded, result.events, result.duplicates,
                    len(result.rejected),
                )  # fmt: skip
                yield result
        finally:
            await core.leave()

    return app


# --- SLO ------------------------------------------------------------------------------------


def slo_app(settings: StreamSettings, broker_url: str, **options: Any) -> faust.App:
    """``telemetry.requests`` -> ``slo_windows``, ``slo.alerts`` and SLO breaches."""
    app = _app(settings, broker_url, "slo", options)
    source = _raw_topic(app, TELEMETRY_REQUESTS)
    alerts = _raw_topic(app, SLO_ALERTS)
    dlq = _raw_topic(app, TELEMETRY_DLQ)

    def opener() -> SloSink:
        sink = SloSink(settings.ledger)
        sink.restore()
        return sink

    core = _Core(app, opener)

    @app.agent(source, name="slo")
    async def slo(stream: Any) -> AsyncIterator[SloBatch]:
        core.enter()
        try:
            async for events in stream.take_events(SLO_BATCH, within=WITHIN):
                by_partition: dict[int, list[RawMessage]] = {}
                for event in events:
                    raw = raw_message(event)
                    by_partition.setdefault(raw.partition, []).append(raw)
                for partition, records in sorted(by_partition.items()):
                    result: SloBatch = await core.call(
                        partial(SloSink.process, partition=partition, records=records)
                    )
                    await _dead_letters(dlq, result.rejected)
                    for alert in result.alerts:
                        log.warning("SLO alert %s %s %s", alert.slo, alert.rule, alert.severity)
                        await alerts.send(key=alert.slo.encode(), value=alert_json(alert))
                    yield result
        finally:
            await core.leave()

    return app


# --- rollback guard -------------------------------------------------------------------------


def guard_app(settings: StreamSettings, broker_url: str, **options: Any) -> faust.App:
    """Deployments from ``ledger.events`` plus telemetry -> rollbacks in the ledger."""
    app = _app(settings, broker_url, "guard", options)
    ledger = app.topic(LEDGER_EVENTS, key_type=bytes, value_serializer=LEDGER_EVENT_CODEC)
    telemetry = _raw_topic(
        app, TELEMETRY_REQUESTS, TELEMETRY_RESOURCES, MODEL_OUTCOMES, DEPLOYMENT_STOPS
    )
    dlq = _raw_topic(app, TELEMETRY_DLQ)

    def opener() -> GuardWorker:
        worker = GuardWorker(settings.ledger)
        worker.load()
        return worker

    core = _Core(app, opener)

    def report(verdicts: Verdicts) -> Verdicts:
        for trigger in verdicts.recorded:
            log.warning("rolled back %s: %s", trigger.change_ticket, trigger.reason)
        return verdicts

    @app.agent(ledger, name="guard-ledger")
    async def deployments(stream: Any) -> AsyncIterator[int]:
        core.enter()
        try:
            async for batch in stream.take(GUARD_BATCH, within=WITHIN):
                messages: list[LedgerMessage] = list(batch)

                def apply(c: GuardWorker, m: list[LedgerMessage] = messages) -> int:
                    for message in m:
                        c.on_ledger(message)
                    return c.book.position

                yield await core.call(apply)
        finally:
            await core.leave()

    @app.agent(telemetry, name="guard-telemetry")
    async def observe(stream: Any) -> AsyncIterator[Verdicts]:
        core.enter()
        try:
            async for events in stream.take_events(GUARD_BATCH, within=WITHIN):
                batch = [raw_message(e) for e in events]

                def work(c: GuardWorker, b: list[RawMessage] = batch) -> tuple[Any, Verdicts]:
                    rejected = [r for m in b if (r := c.on_telemetry(m)) is not None]
                    return rejected, c.roll_back_due()

                rejected, verdicts = await core.call(work)
                await _dead_letters(dlq, rejected)
                yield report(verdicts)
        finally:
            await core.leave()

    return app


# --- indicators -----------------------------------------------------------------------------

BARS_TABLE = "indicator-bars"  # its changelog: <group>.indicators-indicator-bars-changelog


def _closed_key(bar: Bar) -> bytes:
    return f"bar|{bar.symbol}|{bar.timeframe}|{bar_key(bar.start)}".encode()


def _open_key(symbol: str) -> bytes:
    return f"open|{symbol}".encode()


def indicators_app(settings: StreamSettings, broker_url: str, **options: Any) -> faust.App:
    """``market.ticks`` -> bars -> ``indicator_values`` and ``indicators.values``."""
    app = _app(settings, broker_url, "indicators", {**INDICATORS_PRODUCER, **options})
    source = _raw_topic(app, MARKET_TICKS)
    values = _raw_topic(app, INDICATOR_VALUES)
    dlq = _raw_topic(app, MARKET_DLQ)
    # The bar history, in memory and in its changelog topic (one partition, like the
    # ticks'): "bar|<symbol>|<timeframe>|<start>" -> a closed bar of the current UTC day;
    # "open|<symbol>" -> {"offset": the offset of the symbol's last tick, "bars": its open
    # bars, "published": {timeframe: the last bar whose snapshot the broker acknowledged}}
    # (one entry: one changelog message, so they always agree).
    table = app.Table(
        BARS_TABLE,
        partitions=1,
        use_partitioner=True,  # written after a batch, outside one event's context
        key_type=bytes,  # bytes: the "raw" serializer, in the changelog and in recovery
        value_type=bytes,
    )
    core = _Core(
        app,
        lambda: IndicatorCore(settings.ledger, IndicatorConfig.load(settings.indicators_config)),
    )
    restored = False
    # Per (symbol, timeframe): the newest bar key whose snapshot the broker acknowledged.
    acked: dict[tuple[str, str], str] = {}

    def history() -> tuple[list[Bar], dict[str, tuple[int, list[Bar]]]]:
        closed: list[Bar] = []
        opened: dict[str, tuple[int, list[Bar]]] = {}
        acked.clear()
        for key, value in table.items():
            if key.startswith(b"bar|"):
                closed.append(Bar.from_json(value))
            elif key.startswith(b"open|"):
                entry = json.loads(value)
                symbol = key[5:].decode()
                opened[symbol] = (entry["offset"], [Bar.from_json(i) for i in entry["bars"]])
                for timeframe, last in entry["published"].items():
                    if last is not None:  # None: nothing of it acknowledged yet
                        acked[symbol, timeframe] = last
        return closed, opened

    async def publish(symbol: str, timeframe: str, key: str, data: bytes) -> None:
        """Send one snapshot; once acknowledged, it counts as published (not awaited: Faust
        flushes every send before it commits offsets)."""

        def done(sent: Any) -> None:
            ok = not sent.cancelled() and sent.exception() is None
            if ok and acked.get((symbol, timeframe), "") < key:
                acked[symbol, timeframe] = key

        (await values.send(key=symbol.encode(), value=data)).add_done_callback(done)

    def keep(batch: IndicatorBatch) -> None:
        for bar in batch.expired:
            table.pop(_closed_key(bar), None)
        for bar in batch.bars:
            table[_closed_key(bar)] = bar.to_json().encode()
        for symbol, (offset, bars) in batch.open_bars.items():
            published = {b.timeframe: acked.get((symbol, b.timeframe)) for b in bars}
            entry = {"offset": offset, "bars": [b.to_json() for b in bars], "published": published}
            table[_open_key(symbol)] = json.dumps(entry).encode()

    @app.on_partitions_revoked.connect
    async def forget(sender: Any, /, *_: Any, signal: Any, **__: Any) -> None:
        # Another worker may take the ticks over meanwhile: rebuild from the table when
        # they come back, not from what this one last held.
        nonlocal restored
        restored = False

    @app.agent(source, name="indicators")
    async def indicators(stream: Any) -> AsyncIterator[IndicatorBatch]:
        nonlocal restored
        core.enter()
        try:
            async for events in stream.take_events(TICK_BATCH, within=WITHIN):
                if not restored:  # the table is recovered before the first batch
                    closed, opened = history()
                    replayed = await core.call(
                        partial(IndicatorCore.restore, closed=closed, open_bars=opened)
                    )
                    # What may have been stored but never acknowledged: publish it again.
                    again = await core.call(partial(IndicatorCore.unpublished, published=acked))
                    for symbol, timeframe, key, data in again:
                        await publish(symbol, timeframe, key, data)
                    log.info(
                        "indicators: %d bars of %d symbols replayed, %d snapshots published "
                        "again", replayed, len(opened), len(again),
                    )  # fmt: skip
                    restored = True
                batch = [raw_message(e) for e in events]
                result: IndicatorBatch = await core.call(
                    partial(IndicatorCore.process, records=batch)
                )
                for s, data in zip(result.snapshots, result.canonical, strict=True):
                    await publish(s.symbol, s.timeframe, bar_key(s.bar_time), data)
                # A rejected late tick is skipped when redelivered (its symbol's offset has
                # moved past it): its dead letter must be acknowledged before the table moves.
                await asyncio.gather(*await _dead_letters(dlq, result.rejected))
                keep(result)
                for ours, stored in result.conflicts:
                    log.error(
                        "indicators: %s %s %s is stored with hash %s, computed %s; kept the "
                        "stored one", ours.symbol, ours.timeframe, bar_key(ours.bar_time),
                        stored, ours.hash,
                    )  # fmt: skip
                yield result
        finally:
            await core.leave()

    return app


FAUST_ROLES: dict[str, Callable[..., faust.App]] = {
    "ingestion": ingestion_app,
    "slo": slo_app,
    "guard": guard_app,
    "indicators": indicators_app,
}


def run_faust(app: faust.App, loglevel: str = "warning") -> None:
    """Run ``app`` until SIGINT/SIGTERM (Faust's worker; it exits the process when done)."""
    faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()


def run_relay(
    settings: StreamSettings, broker_url: str, on_batch: Callable[[RelayBatch], Any] | None = None
) -> None:
    """Relay the ledger to ``ledger.events`` and follow it until SIGINT/SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    store = open_store(settings.ledger)
    try:
        with KafkaSender(broker_url) as sender, Relay(store, sender) as relay:
            relay.follow(stop.is_set, on_batch)
    finally:
        store.close()
