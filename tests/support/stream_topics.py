"""Reading a topic of the test broker from its beginning to its end, with aiokafka."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]

from streams.settings import bootstrap_servers

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Record:
    """A record with its headers, as a dead-letter or alert consumer sees it."""

    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


@dataclass(frozen=True)
class Received:
    offset: int
    key: bytes
    value: bytes


async def _records(broker_url: str, topic: str, timeout: float) -> list[Record]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(broker_url),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        await consumer.topics()  # fetches the cluster's metadata
        partitions = consumer.partitions_for_topic(topic) or set()
        assert partitions == {0}, f"{topic} has partitions {partitions}, expected only 0"
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        received: list[Record] = []
        deadline = time.monotonic() + timeout
        while len(received) < end:
            assert time.monotonic() < deadline, f"{len(received)} of {end} messages in {timeout}s"
            batches = await consumer.getmany(partition, timeout_ms=500)
            for r in batches.get(partition, []):
                received.append(Record(r.offset, r.key, r.value, dict(r.headers)))
        return received
    finally:
        await consumer.stop()


def records(broker_url: str, topic: str, timeout: float = 30.0) -> list[Record]:
    """Every record of ``topic`` (one partition), with headers, up to its end offset now."""
    return asyncio.run(_records(broker_url, topic, timeout))


def read_topic(broker_url: str, topic: str, timeout: float = 30.0) -> list[Received]:
    """Every message of ``topic`` (one partition) up to its end offset, in offset order."""
    return [Received(r.offset, r.key, r.value) for r in records(broker_url, topic, timeout)]


async def _produce(broker_url: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker_url), acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send(topic, value=value, partition=0)
        await producer.flush()
    finally:
        await producer.stop()


def produce(broker_url: str, topic: str, values: list[bytes]) -> None:
    """Send ``values`` to partition 0 of ``topic``, in order, acknowledged by the broker."""
    asyncio.run(_produce(broker_url, topic, values))


async def _committed(broker_url: str, group: str, topic: str) -> int | None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(broker_url), group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        offset: int | None = await consumer.committed(TopicPartition(topic, 0))
        return offset
    finally:
        await consumer.stop()


def committed(broker_url: str, group: str, topic: str) -> int | None:
    """The offset consumer group ``group`` has committed on partition 0 of ``topic``."""
    return asyncio.run(_committed(broker_url, group, topic))


def until(check: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    """``check()`` once it is truthy, polled every 0.3 s; AssertionError naming ``what``
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(0.3)


def start_worker(role: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``regledger worker ROLE`` in a process of its own, its output appended to ``log`` (a
    pipe nobody reads would block the worker once full)."""
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "console.cli", "worker", role], env=env, cwd=ROOT,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
