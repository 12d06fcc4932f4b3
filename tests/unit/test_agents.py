"""The Faust agents of streams/agents.py, each run through ``agent.test_context()``.

No broker: the apps name one that is never connected (test_context feeds each agent its
records in memory), what an agent sends (dead letters, SLO alerts) is caught by patching
``Topic.send``, and the ledger is a SQLite file. Each test drives the real agent function:
its topic's deserializer, its ``take_events`` batches, its ``_Core`` thread and its sinks.

What test_context does that the helpers below take into account:

* ``test_context(channel=agent.channel)`` decodes a record with the agent's own topic (raw
  bytes, or a ``LedgerMessage`` through the ``ledger_event`` codec); without it the value
  would reach the agent as given, never deserialized.
* A record's topic is the agent's topic when it reads exactly one; an agent reading several
  (``audit.*``, the guard's telemetry) gets ``"<internal>"``. ``_put`` names the topic a
  record is read from through the wrapper's ``original_channel``. Partition 0; offsets
  count from 0 per wrapper.
* ``put(wait=True)`` returns when the agent next yields, and ``take_events`` flushes on a
  0.2 s timer that puts do not line up with: records put without waiting may come as more
  than one batch. ``_until`` waits for the results a test needs instead of counting batches.
* Iterating a stream builds ``app.consumer`` (never started) whose consumer thread owns an
  event loop that only a started-then-stopped thread closes: ``_running`` closes it.
* Leaving the context stops the stream (which ends ``take_events``, so the agent's
  ``finally`` closes its core) and at once cancels the actor task, which can cut that close
  short. ``_running`` stops the streams first and waits until the core's thread has ended:
  every test also checks that its agents close their core.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.topics import Topic

from domain.application import AuditTrail
from ledger import Settings, open_store
from ledger.factory import application_env
from projections.core import decoder
from streams.agents import guard_app, indicators_app, ingestion_app, slo_app
from streams.codecs import LedgerMessage, encode_message
from streams.guard_worker import Verdicts
from streams.ingestion import IngestResult
from streams.settings import StreamSettings
from streams.slo_store import SLO_WINDOWS, SloBatch, alert_json
from tests.support.databases import ledger_url
from tests.support.deployments import deploy_canary

BROKER = "kafka://127.0.0.1:1"  # never connected
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CORE_THREAD = "regledger-core"
NOT_JSON = "Expecting property name enclosed in double quotes"

Sent = tuple[str, Any, Any, Any]  # topic, key, value, headers


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    with ledger_url("sqlite", tmp_path) as url:
        yield url


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Sent]:
    """(topic, key, value, headers) of every record an agent sends, in order."""
    records: list[Sent] = []

    async def send(self: Topic, *, key: Any = None, value: Any = None, **rest: Any) -> None:
        records.append((self.get_topic_name(), key, value, rest.get("headers")))

    monkeypatch.setattr(Topic, "send", send)
    return records


def _settings(url: str) -> StreamSettings:
    return StreamSettings(ledger=Settings(database_url=url))


def _core_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith(CORE_THREAD)}


@asynccontextmanager
async def _running(app: faust.App, *names: str) -> AsyncIterator[list[Any]]:
    """Test wrappers of ``app``'s agents ``names``, all running; on leaving, every core is
    closed (its thread ended) and the unstarted consumer's event loop too."""
    before = _core_threads()
    try:
        async with AsyncExitStack() as stack:
            wrappers = []
            for name in names:
                agent = app.agents[name]
                context = agent.test_context(channel=agent.channel)
                wrappers.append(await stack.enter_async_context(context))
            try:
                yield wrappers
            finally:
                for wrapper in wrappers:
                    await wrapper.stream().stop()  # ends take_events: the agent leaves its core
                for _ in range(500):
                    if not _core_threads() - before:
                        break
                    await asyncio.sleep(0.01)
    finally:
        app.consumer._thread.thread_loop.close()
    assert not _core_threads() - before, "an agent left its core open"


async def _put(wrapper: Any, topic: str, value: bytes, *, wait: bool = True) -> None:
    """Deliver ``value`` as read from ``topic``; with ``wait``, until the agent yields."""
    wrapper.original_channel = topic
    await wrapper.put(value, wait=wait)


async def _until(wrapper: Any, done: Callable[[list[Any]], bool]) -> list[Any]:
    """What the agent yielded (one value per batch) once ``done`` holds for it."""
    condition = wrapper.new_value_processed
    try:
        async with condition:
            await asyncio.wait_for(
                condition.wait_for(lambda: done(list(wrapper.results.values()))), timeout=5
            )
    except TimeoutError:
        raise AssertionError(f"after 5 s the agent has yielded only {wrapper.results}") from None
    return list(wrapper.results.values())


def _dead_letter(topic: str, error: str, origin: str, offset: int) -> Sent:
    headers = [
        ("regledger-error", error.encode()),
        ("regledger-field", b"message"),
        ("regledger-topic", origin.encode()),
        ("regledger-partition", b"0"),
        ("regledger-offset", str(offset).encode()),
    ]
    return (topic, None, b"{not json", headers)


# --- ingestion -------------------------------------------------------------------------------


def _user_action(source_event_id: str) -> bytes:
    return json.dumps({
        "source_event_id": source_event_id,
        "command": "record_user_action",
        "fields": {"action_id": "UA-1", "action": "LOGIN", "target": "console",
                   "details": {"ip": "10.0.0.7"}, "actor": "alice",
                   "occurred_at": "2026-03-02T09:00:00.125000Z"},
    }).encode()  # fmt: skip


def test_ingest_records_a_fact_once_and_dead_letters_a_poison_message(
    database: str, sent: list[Sent]
) -> None:
    app = ingestion_app(_settings(database), BROKER)

    async def scenario() -> list[IngestResult]:
        async with _running(app, "ingest") as (ingest,):
            await _put(ingest, "audit.activity", _user_action("ua-1"))
            await _put(ingest, "audit.activity", _user_action("ua-1"))  # sent twice
            await _put(ingest, "audit.activity", b"{not json")
            return list(ingest.results.values())

    first, again, poison = asyncio.run(scenario())

    assert first == IngestResult(messages=1, recorded=1, events=1)
    assert again == IngestResult(messages=1, duplicates=1)
    [rejection] = poison.rejected
    assert (poison.messages, poison.recorded, poison.events, poison.duplicates) == (1, 0, 0, 0)
    error = f"message is not JSON: {NOT_JSON} at line 1 column 2"
    assert sent == [_dead_letter("audit.dlq", error, "audit.activity", 2)]
    assert sent[0][3] == rejection.headers()

    with open_store(Settings(database_url=database)) as store:
        assert store.source_positions(["ua-1"]) == {"ua-1": 0}
        [record] = store.select_records(0, None, (), 100)
    assert (record.position, record.topic) == (0, "domain.activity:UserAction.Recorded")
    payload = decoder().decode(record.state)
    assert (payload["action_id"], payload["actor"], payload["details"]) == (
        "UA-1", "alice", {"ip": "10.0.0.7"},
    )  # fmt: skip


# --- the rollback guard ----------------------------------------------------------------------

TICKET = "CHG-2"
ROLLBACK = "domain.deployments:Rollback.Executed"


def _deploy(url: str) -> None:
    """trading-api 4.1.0 promoted (the baseline), then the 4.2.0 canary started at T0:
    ledger positions 0 to 6."""
    trail = AuditTrail(env=application_env(Settings(database_url=url)))
    try:
        deploy_canary(trail, at=T0, baseline="CHG-1", canary=TICKET)
    finally:
        trail.close()


def _ledger_messages(url: str, topics: tuple[str, ...] = ()) -> list[LedgerMessage]:
    """The ledger's events as the relay puts them on ``ledger.events``."""
    decode = decoder().decode
    with open_store(Settings(database_url=url)) as store:
        records = store.select_records(0, None, topics, 100)
    return [LedgerMessage.of(r, decode(r.state)) for r in records]


def _request(version: str, second: int, status: int = 200) -> bytes:
    return json.dumps({
        "service": "trading-api", "endpoint": "/orders", "latency_ms": 40, "status": status,
        "time": (T0 + timedelta(seconds=second)).isoformat(), "version": version,
    }).encode()  # fmt: skip


def _breaching_requests() -> list[bytes]:
    """Five minutes of 100 baseline and 100 candidate requests, then one at 09:05 that
    closes the window. The 3 candidate failures are in its last 10 s bucket, which counts
    only once a later request is seen: however the records are batched, the rollback is
    due at the last one, never before."""
    out = []
    for i in range(100):
        out.append(_request("4.1.0", i * 3))
        out.append(_request("4.2.0", i * 3, 503 if i >= 97 else 200))
    return [*out, _request("4.1.0", 300)]


def test_the_guard_rolls_a_breaching_canary_back_once(database: str, sent: list[Sent]) -> None:
    app = guard_app(_settings(database), BROKER)

    async def scenario() -> tuple[list[int], list[Verdicts]]:
        async with _running(app, "guard-ledger", "guard-telemetry") as (ledger, telemetry):
            # The first record opens the core, which loads the ledger: empty so far.
            await _put(telemetry, "telemetry.requests", b"{not json")
            _deploy(database)  # so the guard learns of the canary from ledger.events only
            messages = [encode_message(m) for m in _ledger_messages(database)]
            for message in messages:
                await _put(ledger, "ledger.events", message, wait=False)
            await _until(ledger, lambda positions: positions[-1:] == [6])
            await _put(ledger, "ledger.events", messages[3])  # a redelivery
            for request in _breaching_requests():
                await _put(telemetry, "telemetry.requests", request, wait=False)
            await _until(telemetry, lambda verdicts: any(v.recorded for v in verdicts))
            await _put(telemetry, "telemetry.requests", _request("4.2.0", 330, 503))
            return list(ledger.results.values()), list(telemetry.results.values())

    positions, verdicts = asyncio.run(scenario())

    assert positions[-2:] == [6, 6]  # the redelivered position 3 changed nothing
    assert positions == sorted(positions)  # however the seven records were batched
    assert verdicts[0] == Verdicts()  # the dead letter's batch
    assert verdicts[-1] == Verdicts()  # a failure after the rollback triggers nothing
    [trigger] = [t for v in verdicts for t in v.recorded]
    assert [t for v in verdicts for t in v.already] == []
    assert verdicts[-2].recorded == [trigger]  # due in the batch of the last request
    assert (trigger.change_ticket, trigger.kind, trigger.reason, trigger.occurred_at) == (
        TICKET,
        "ERROR_RATE",
        "canary error rate 3 % over 100 requests (threshold 1 %)",
        T0 + timedelta(minutes=5),
    )

    error = f"is not a JSON document: {NOT_JSON}: line 1 column 2 (char 1)"
    assert sent == [_dead_letter("telemetry.dlq", error, "telemetry.requests", 0)]

    [rollback] = _ledger_messages(database, (ROLLBACK,))
    assert (rollback.payload["rollback_id"], rollback.payload["trigger"]) == (
        f"RB-{TICKET}", "ERROR_RATE",
    )  # fmt: skip
    assert (rollback.payload["level"], rollback.payload["actor"]) == (1, "rollback-guard")
    assert rollback.payload["reason"] == trigger.reason
    evidence = rollback.payload["evidence"]
    assert (evidence["baseline_version"], evidence["candidate_version"]) == ("4.1.0", "4.2.0")
    assert [(m.position, m.topic) for m in _ledger_messages(database)[7:]] == [
        (7, "domain.deployments:Deployment.RolledBack"),
        (8, ROLLBACK),
    ]


# --- SLO -------------------------------------------------------------------------------------


def _sample(second: int, latency: int, status: int = 200) -> bytes:
    return json.dumps({
        "service": "trading-api", "endpoint": "/orders", "latency_ms": latency,
        "status": status, "time": (T0 + timedelta(seconds=second)).isoformat(),
    }).encode()  # fmt: skip


def test_slo_counts_windows_alerts_and_dead_letters(database: str, sent: list[Sent]) -> None:
    """Minute 09:00: ten /orders requests, one failed. Its minute is complete, and its rules
    evaluated, at the first sample of 09:01, sent alone: alerts come in that batch."""
    app = slo_app(_settings(database), BROKER)
    minute = [_sample(i * 6, 5 * (i + 1), 503 if i == 9 else 200) for i in range(10)]

    async def scenario() -> list[SloBatch]:
        async with _running(app, "slo") as (slo,):
            for value in minute:
                await _put(slo, "telemetry.requests", value, wait=False)
            await _until(slo, lambda batches: sum(b.samples for b in batches) == 10)
            await _put(slo, "telemetry.requests", _sample(60, 5))
            await _put(slo, "telemetry.requests", b"{not json")
            return list(slo.results.values())

    batches = asyncio.run(scenario())

    *counting, closing, poison = batches
    assert sum(b.samples for b in counting) == 10
    for batch in counting:  # each batch of 09:00 merges into its 2 rows; no alert yet
        assert (batch.skipped, batch.rejected, batch.windows, batch.alerts) == (0, [], 2, [])
    assert (closing.samples, closing.skipped, closing.rejected, closing.windows) == (1, 0, [], 2)
    burn = {"trading-api-availability": Decimal(200), "trading-api-error-rate": Decimal(100)}
    assert [(a.slo, a.rule, a.burn_rate_long) for a in closing.alerts] == [
        (slo, rule, burn[slo])
        for slo in ("trading-api-availability", "trading-api-error-rate")
        for rule in ("page-1h", "page-6h", "ticket-3d")
    ]
    assert (closing.breaches_recorded, closing.breaches_duplicate) == (6, 0)
    [rejection] = poison.rejected
    assert (poison.samples, poison.skipped, poison.windows, poison.alerts) == (0, 0, 0, [])

    alerts = [("slo.alerts", a.slo.encode(), alert_json(a), None) for a in closing.alerts]
    error = (
        "message=b'{not json' is not JSON: unexpected character, expected a string key: line 1 "
        "column 2 (char 1)"
    )
    assert sent == [*alerts, _dead_letter("telemetry.dlq", error, "telemetry.requests", 11)]
    assert sent[-1][3] == rejection.headers()

    with open_store(Settings(database_url=database)) as store, store.view_session() as session:
        rows = [
            (r["endpoint"], r["bucket_start"], r["total"], r["errors"])
            for r in session.scan(SLO_WINDOWS)
        ]
    assert sorted(rows) == [
        ("*", T0, 10, 1), ("*", T0 + timedelta(minutes=1), 1, 0),
        ("/orders", T0, 10, 1), ("/orders", T0 + timedelta(minutes=1), 1, 0),
    ]  # fmt: skip
    breaches = _ledger_messages(database, ("domain.reliability:SloBreach.Recorded",))
    assert sorted((m.payload["slo"], m.payload["rule"]) for m in breaches) == sorted(
        (a.slo, a.rule) for a in closing.alerts
    )


def test_the_indicators_worker_batches_what_it_sends(database: str) -> None:
    """A snapshot and a changelog entry per closed bar: batched, not a request each."""
    app = indicators_app(_settings(database), BROKER)
    assert (app.conf.producer_linger, app.conf.producer_max_batch_size) == (0.002, 262_144)
    assert app.conf.producer_max_request_size == 1_000_000  # one batch fits a request
    slo = slo_app(_settings(database), BROKER)  # the others keep Faust's defaults
    assert (slo.conf.producer_linger, slo.conf.producer_max_batch_size) == (0.0, 16_384)
