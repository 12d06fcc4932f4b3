"""What the stream benchmarks share: producing to a topic, the raw consume rate (their
baseline), a worker's consume loop around a synchronous core, timed phases and profiles.

Every topic here has one partition and is read from partition 0, by an assigned
``AIOKafkaConsumer`` (no consumer group), so a phase reads exactly the offsets it names.

>>> phase = Phase(1_000, [0.5, 0.25, 1.0], target=1_500)
>>> phase.report(limit=4_000.0)["rate"], phase.report(limit=4_000.0)["target_met"]
(2000, True)
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.messages import RawMessage

__all__ = [
    "FETCH_TIMEOUT_MS",
    "LIMIT_MAX_RECORDS",
    "PROFILE_TOP",
    "STALL_S",
    "Consumed",
    "Phase",
    "Profiled",
    "consume_into",
    "measure_raw",
    "produce",
    "profile_top",
    "read_raw",
    "run_async",
]

LIMIT_MAX_RECORDS = 100_000  # getmany's cap for the limit: "as many as fetched"
PRODUCE_WINDOW = 10_000  # sends in flight while producing
FETCH_TIMEOUT_MS = 1_000
STALL_S = 60.0  # no record for this long: the broker lost some, stop
PROFILE_TOP = 25
CLIENT_ID = "regledger-bench"
_T = TypeVar("_T")


def run_async(main: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run(main)``, but the loop's main task ends with None: on Python 3.11,
    ``asyncio.run`` formats the repr of its finished main task, result included, as it
    restores the SIGINT handler, which for a run's outcomes (thousands of batches) costs
    seconds of wall time."""
    box: list[_T] = []

    async def keep() -> None:
        box.append(await main)

    asyncio.run(keep())
    return box[0]


# --- producing (untimed) --------------------------------------------------------------------


async def _produce(
    servers: str,
    topic: str,
    values: Sequence[bytes],
    keys: Sequence[bytes | None] | None,
    advance: Callable[[int], None],
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=servers,
        acks=1,
        enable_idempotence=False,  # Tansu has no InitProducerId
        linger_ms=5,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    try:
        pending = []
        for i, value in enumerate(values):
            key = None if keys is None else keys[i]
            pending.append(await producer.send(topic, value=value, key=key, partition=0))
            if len(pending) >= PRODUCE_WINDOW:
                await asyncio.gather(*pending)
                advance(len(pending))
                pending.clear()
        await asyncio.gather(*pending)
        advance(len(pending))
    finally:
        await producer.stop()


def produce(
    servers: str,
    topic: str,
    values: Sequence[bytes],
    progress: Any,
    keys: Sequence[bytes | None] | None = None,
    label: str | None = None,
) -> None:
    """Send ``values`` to partition 0 of ``topic`` in order (untimed), under a progress
    task named ``label`` (default: what is sent where)."""
    task = progress.add_task(label or f"produce {len(values):,} to {topic}", total=len(values))
    run_async(_produce(servers, topic, values, keys, lambda k: progress.advance(task, k)))


# --- consuming ------------------------------------------------------------------------------


def _consumer(servers: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=servers, enable_auto_commit=False, client_id=CLIENT_ID
    )


async def read_raw(servers: str, topic: str, count: int, repeat: int) -> list[float]:
    """Seconds to read ``count`` records of ``topic`` from its start, ``repeat`` times
    (``getmany`` of up to ``LIMIT_MAX_RECORDS`` at a time, nothing done with them)."""
    consumer = _consumer(servers)
    await consumer.start()
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    seconds = []
    try:
        for _ in range(repeat):
            started = time.perf_counter()
            await consumer.seek_to_beginning(partition)
            seen, moved = 0, started
            while seen < count:
                fetched = await consumer.getmany(
                    partition, timeout_ms=FETCH_TIMEOUT_MS, max_records=LIMIT_MAX_RECORDS
                )
                records = fetched.get(partition, [])
                if records:
                    moved = time.perf_counter()
                elif time.perf_counter() - moved > STALL_S:
                    raise RuntimeError(f"{topic}: {seen:,} of {count:,} records read")
                seen += len(records)
            seconds.append(time.perf_counter() - started)
    finally:
        await consumer.stop()
    return seconds


@dataclass
class Consumed:
    """What :func:`consume_into` measured: seconds end to end, in the core and in ``after``,
    and the core's outcome per batch."""

    seconds: float = 0.0
    core_seconds: float = 0.0
    after_seconds: float = 0.0
    outcomes: list[Any] = field(default_factory=list)


async def consume_into(
    servers: str,
    topic: str,
    first: int,
    count: int,
    batch: int,
    work: Callable[[list[RawMessage]], Any],
    advance: Callable[[int], None],
    after: Callable[[Any], Awaitable[None]] | None = None,
) -> Consumed:
    """Seconds to read offsets ``first .. first + count - 1`` of ``topic`` in batches of
    ``batch`` (the last may be short), fetched until full as ``take_events`` fills them,
    and hand each, as RawMessages, to ``work`` in a worker thread of its own (the agents'
    ``_Core``); then, on the event loop, await ``after(outcome)`` (what the agent does with
    it: publish, wait for the acks) before the next batch goes to ``work``. With the
    seconds spent in ``work`` and in ``after``, and what ``work`` returned per batch.

    As in a Faust worker, whose stream buffer fills while an agent awaits its core, the
    next batch is fetched while ``work`` and ``after`` run (one batch ahead)."""
    consumer = _consumer(servers)
    await consumer.start()
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    loop = asyncio.get_running_loop()
    consumed = Consumed()
    end = first + count

    def timed(messages: list[RawMessage]) -> Any:
        started = time.perf_counter()
        try:
            return work(messages)
        finally:
            consumed.core_seconds += time.perf_counter() - started

    async def fetch(offset: int) -> list[RawMessage]:
        records: list[Any] = []
        wanted, moved = min(batch, end - offset), time.perf_counter()
        while len(records) < wanted:
            fetched = await consumer.getmany(
                partition, timeout_ms=FETCH_TIMEOUT_MS, max_records=wanted - len(records)
            )
            got = fetched.get(partition, [])
            if got:
                moved = time.perf_counter()
            elif time.perf_counter() - moved > STALL_S:
                raise RuntimeError(f"{topic}: stalled at offset {offset + len(records):,}")
            records += got
        return [RawMessage(r.topic, r.partition, r.offset, r.key, r.value) for r in records]

    try:
        with ThreadPoolExecutor(1, thread_name_prefix="bench-core") as core:
            started = time.perf_counter()
            consumer.seek(partition, first)
            messages = await fetch(first)
            while messages:
                offset = messages[-1].offset + 1
                working = loop.run_in_executor(core, timed, messages)
                ahead = asyncio.ensure_future(fetch(offset)) if offset < end else None
                outcome = await working
                if after is not None:
                    after_started = time.perf_counter()
                    await after(outcome)
                    consumed.after_seconds += time.perf_counter() - after_started
                consumed.outcomes.append(outcome)
                advance(len(messages))
                messages = await ahead if ahead is not None else []
            consumed.seconds = time.perf_counter() - started
            return consumed
    finally:
        await consumer.stop()


# --- phases ---------------------------------------------------------------------------------


@dataclass
class Phase:
    """One measured figure: per-repeat seconds over ``n`` items each."""

    n: int
    seconds: list[float] = field(default_factory=list)
    core_seconds: list[float] = field(default_factory=list)  # in the worker thread
    target: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def add_run(
        self, seconds: float, facts: dict[str, Any] | None = None, core: float | None = None
    ) -> None:
        """One timed run: its seconds (and in the core), and what it did (a list per fact,
        run by run)."""
        self.seconds.append(seconds)
        if core is not None:
            self.core_seconds.append(core)
        for key, value in (facts or {}).items():
            self.extra.setdefault(key, []).append(value)

    @property
    def rate(self) -> float:
        return self.n / statistics.median(self.seconds)

    def report(self, limit: float) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rate": round(self.rate),
            "ratio": round(self.rate / limit, 3),
            "target": self.target,
            "n": self.n,
        }
        if self.target is not None:
            out["target_met"] = self.rate >= self.target
        out["runs"] = [round(self.n / s) for s in self.seconds]
        out["seconds"] = [round(s, 3) for s in self.seconds]
        if self.core_seconds:  # the core's own rate: what consuming costs on top
            out["core_rate"] = round(self.n / statistics.median(self.core_seconds))
            out["core_seconds"] = [round(s, 3) for s in self.core_seconds]
        return out | self.extra


def measure_raw(servers: str, topic: str, count: int, repeat: int, progress: Any) -> Phase:
    """The limit: :func:`read_raw` of ``count`` records already on ``topic``, ``repeat``
    times; messages/s."""
    task = progress.add_task(f"limit: raw consume x {repeat}", total=repeat)
    seconds = run_async(read_raw(servers, topic, count, repeat))
    progress.advance(task, repeat)
    return Phase(count, seconds)


class Profiled:
    """Wraps a core's method: cProfile around every call (in the calling thread)."""

    def __init__(self, method: Callable[..., Any]) -> None:
        self.method = method
        self.profile = cProfile.Profile()

    def __call__(self, *args: Any) -> Any:
        return self.profile.runcall(self.method, *args)

    def top(self, title: str) -> str:
        return profile_top(self.profile, title)


def profile_top(profile: cProfile.Profile, title: str) -> str:
    """The ``PROFILE_TOP`` functions of ``profile`` by own time, then by cumulative time."""
    out = io.StringIO()
    out.write(f"--- {title}: top {PROFILE_TOP} by own time, then by cumulative time\n")
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(PROFILE_TOP)
    stats.sort_stats("cumulative").print_stats(PROFILE_TOP)
    return out.getvalue()
