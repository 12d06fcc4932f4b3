"""Reading a topic of the test broker from its beginning to its end, with aiokafka."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]

from streams.settings import bootstrap_servers


@dataclass(frozen=True)
class Received:
    offset: int
    key: bytes
    value: bytes


async def _read(broker_url: str, topic: str, timeout: float) -> list[Received]:
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
        received: list[Received] = []
        deadline = time.monotonic() + timeout
        while len(received) < end:
            assert time.monotonic() < deadline, f"{len(received)} of {end} messages in {timeout}s"
            batches = await consumer.getmany(partition, timeout_ms=500)
            for record in batches.get(partition, []):
                received.append(Received(record.offset, record.key, record.value))
        return received
    finally:
        await consumer.stop()


def read_topic(broker_url: str, topic: str, timeout: float = 30.0) -> list[Received]:
    """Every message of ``topic`` (one partition) up to its end offset, in offset order."""
    return asyncio.run(_read(broker_url, topic, timeout))
