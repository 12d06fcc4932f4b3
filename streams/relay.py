"""The relay: ledger -> ``ledger.events``, in position order, at least once, resumable.

How a batch goes out (``Relay.batches``):

1. read the relay's position from ``ledger_tracking`` (``relay:ledger.events``);
2. read the next events and send each to ``ledger.events``, keyed by its
   ``originator_id``, in position order;
3. wait until the broker has acknowledged every message of the batch (acks=all);
4. move the tracked position from where it was read to the batch's last position: a
   compare and set. If it fails, another relay moved it: this one stops.

A crash between 3 and 4 sends the batch again on restart, so consumers see each
position at least once and de-duplicate by position (:class:`ContinuityChecker`),
which also checks that every position arrives and each links to the one before.

Why a plain aiokafka producer and not a Faust agent: the relay's source is the
database, not a topic, and its one rule is "advance only after the broker acked".
:class:`KafkaSender` makes that explicit (send, await every delivery, return), keeps
the database side synchronous like the projection runner, and needs no consumer
group. Idempotence is off: the bundled Tansu broker has no InitProducerId. The topic
has one partition: keys keep Kafka's per-aggregate semantics, the single partition
keeps the ledger's total order that continuity checking needs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]

from ledger.chain import LedgerRecord
from ledger.store import ChainStore
from projections.core import decoder

from .codecs import GENESIS_PREV_HASH_HEX, LedgerMessage, encode_ledger_event
from .settings import bootstrap_servers
from .topics import LEDGER_EVENTS, TopicError, create_missing_topics

__all__ = [
    "LEDGER_EVENTS",
    "RELAY_NAME",
    "BatchSender",
    "ContinuityChecker",
    "ContinuityError",
    "KafkaSender",
    "Relay",
    "RelayBatch",
    "RelayConflictError",
    "RelayError",
]

RELAY_NAME = "relay:ledger.events"  # its ledger_tracking application name
BATCH_SIZE = 1_000
_T = TypeVar("_T")

Message = tuple[bytes, bytes]  # (key, value)


class RelayError(RuntimeError):
    """The relay could not send or record a batch."""


class RelayConflictError(RelayError):
    """Another relay moved the tracked position: two relays are running."""


class ContinuityError(ValueError):
    """``ledger.events`` skipped, broke or forked the chain at ``position``."""

    def __init__(self, position: int, kind: str, message: str) -> None:
        self.position = position
        self.kind = kind  # "gap", "broken_link" or "conflict"
        super().__init__(message)


class BatchSender(Protocol):
    """Sends ``messages`` to ``topic`` in order; returns once the broker acknowledged
    every one, raises otherwise."""

    def __call__(self, topic: str, messages: Sequence[Message]) -> None: ...


@dataclass(frozen=True)
class RelayBatch:
    first: int
    last: int
    count: int


def _done(position: int | None) -> int:
    return -1 if position is None else position


class Relay:
    """Relays ``store``'s events through ``producer_send``; owns one view session
    (close it, or use ``with``).

    >>> with Relay(store, sender) as relay:  # doctest: +SKIP
    ...     relay.run()
    [RelayBatch(first=0, last=999, count=1000), RelayBatch(first=1000, last=1809, count=810)]
    """

    def __init__(
        self,
        store: ChainStore,
        producer_send: BatchSender,
        *,
        name: str = RELAY_NAME,
        batch_size: int = BATCH_SIZE,
        topic: str = LEDGER_EVENTS,
        after_send: Callable[[RelayBatch], None] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.store = store
        self.name = name
        self.topic = topic
        self.batch_size = batch_size
        self._send = producer_send
        self._after_send = after_send  # tests stop a relay here: sent, not yet advanced
        self._decoder = decoder()
        self._session = store.view_session()

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def position(self) -> int | None:
        """The last position relayed and acknowledged; None before the first."""
        return self._session.tracked(self.name)

    def batches(self, until: int | None = None) -> Iterator[RelayBatch]:
        """Relay batches up to ``until`` (default: the head when this starts)."""
        target = self.store.max_position() if until is None else until
        if target is None:
            return
        while True:
            tracked = self._session.tracked(self.name)
            first = _done(tracked) + 1
            if first > target:
                return
            last = min(target, first + self.batch_size - 1)
            records = self.store.select_records(first, last, (), self.batch_size)
            if not records:  # the ledger is shorter than ``until``
                return
            self._send(self.topic, [self._message(r) for r in records])
            batch = RelayBatch(first, records[-1].position, len(records))
            if self._after_send is not None:
                self._after_send(batch)
            with self._session.transaction():
                if not self._session.advance(self.name, tracked, batch.last):
                    where = "the start" if tracked is None else f"position {tracked}"
                    raise RelayConflictError(
                        f"{self.name} is no longer at {where}: another relay moved it while "
                        f"this one sent positions {batch.first}..{batch.last}; stop one of "
                        "them (consumers drop the positions sent twice)"
                    )
            yield batch

    def _message(self, record: LedgerRecord) -> Message:
        try:
            payload = self._decoder.decode(record.state)
        except Exception as exc:
            raise RelayError(
                f"position {record.position} ({record.topic}): its state does not decode "
                f"({type(exc).__name__}: {exc}); `regledger show {record.position}` shows it"
            ) from exc
        return record.originator_id.encode(), encode_ledger_event(record, payload)

    def run(self, until: int | None = None) -> list[RelayBatch]:
        """Catch up to ``until`` (default: the head); return the batches sent."""
        return list(self.batches(until))

    def follow(
        self,
        stopped: Callable[[], bool],
        on_batch: Callable[[RelayBatch], Any] | None = None,
        idle: float = 1.0,
    ) -> None:
        """Catch up, then relay new events as they are appended, until ``stopped()``."""
        self.store.follow(stopped, self.batches, on_batch, idle)


class KafkaSender:
    """A :class:`BatchSender` on an aiokafka producer (acks=all, no idempotence), with
    an event loop in a thread of its own so that the relay stays synchronous.

    It creates a missing topic with one partition and refuses a topic with more.
    """

    def __init__(
        self,
        broker_url: str,
        *,
        timeout: float = 30.0,
        replication_factor: int = 1,
        client_id: str = "regledger-relay",
    ) -> None:
        self.servers = bootstrap_servers(broker_url)
        self.timeout = timeout
        self.replication_factor = replication_factor
        self.client_id = client_id
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="kafka-sender", daemon=True
        )
        self._producer: AIOKafkaProducer | None = None
        self._topics: set[str] = set()

    def start(self) -> KafkaSender:
        self._thread.start()
        try:
            self._producer = self._run(self._start())
        except RelayError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise RelayError(
                f"cannot connect to the broker at {self.servers} ({type(exc).__name__}: {exc}); "
                "check REGLEDGER_BROKER_URL and that the broker is up"
            ) from exc
        return self

    def __enter__(self) -> KafkaSender:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, topic: str, messages: Sequence[Message]) -> None:
        self._run(self._send(topic, messages), timeout=self.timeout + len(messages) * 0.01)

    def close(self) -> None:
        if self._thread.is_alive():
            try:
                if self._producer is not None:
                    self._run(self._producer.stop())
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=10)
        self._loop.close()

    def _run(self, coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        limit = self.timeout if timeout is None else timeout
        try:
            return future.result(limit)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise RelayError(
                f"the broker at {self.servers} did not answer within {limit:g} s; "
                "check REGLEDGER_BROKER_URL and that the broker is up"
            ) from None

    async def _start(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.servers,
            client_id=self.client_id,
            acks="all",
            enable_idempotence=False,  # Tansu cannot InitProducerId; duplicates are expected
            request_timeout_ms=int(self.timeout * 1000),
            max_batch_size=512 * 1024,
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()  # else it warns, unclosed, when collected
            raise
        return producer

    async def _send(self, topic: str, messages: Sequence[Message]) -> None:
        assert self._producer is not None, "start() the sender first"
        if topic not in self._topics:
            await self._ensure_topic(topic)
            self._topics.add(topic)
        # One partition, one request in flight per partition (aiokafka mutes it until
        # the answer): the broker appends in send order, retries included.
        deliveries = [
            await self._producer.send(topic, key=key, value=value, partition=0)
            for key, value in messages
        ]
        results = await asyncio.gather(*deliveries, return_exceptions=True)
        for index, result in enumerate(results):
            if isinstance(result, BaseException):
                raise RelayError(
                    f"the broker did not acknowledge message {index + 1} of {len(messages)} "
                    f"to {topic} ({type(result).__name__}: {result}); nothing was advanced, "
                    "the next run sends the batch again"
                ) from result

    async def _ensure_topic(self, topic: str) -> None:
        try:
            await create_missing_topics(
                self.servers, [topic], timeout=self.timeout,
                replication_factor=self.replication_factor,
            )  # fmt: skip
        except TopicError as exc:
            raise RelayError(str(exc)) from exc


class ContinuityChecker:
    """Checks that ``ledger.events`` messages, in arrival order, continue the chain.

    Feed it every message; :meth:`accept` is True for the next position (process it),
    False for an exact duplicate of one already accepted (skip it), and raises
    :class:`ContinuityError` on a gap, a broken link or a conflicting duplicate. The
    hashes of the last ``window`` positions are kept to compare duplicates with;
    older positions were checked when they first arrived and are skipped.

    >>> checker = ContinuityChecker()  # from genesis: position 0 comes next
    >>> checker.next_position
    0
    """

    def __init__(
        self, position: int | None = None, hash: str | None = None, *, window: int = 100_000
    ) -> None:
        if (position is None) != (hash is None):
            raise ValueError("give both a trusted position and its hash, or neither (genesis)")
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.position = position  # the last position accepted (or trusted)
        self.hash = GENESIS_PREV_HASH_HEX if hash is None else hash
        self._seen: deque[str] = deque(maxlen=window)  # hashes up to ``position``
        if hash is not None:
            self._seen.append(hash)

    @property
    def next_position(self) -> int:
        return _done(self.position) + 1

    def accept(self, message: LedgerMessage) -> bool:
        """True: ``message`` is the next position and links on; False: a duplicate."""
        position, expected = message.position, self.next_position
        if position < expected:
            return self._duplicate(message)
        if position > expected:
            missing = f"{expected}" if position == expected + 1 else f"{expected}..{position - 1}"
            raise ContinuityError(
                position, "gap", f"ledger.events: position {position} arrived but position "
                f"{missing} did not: {position - expected} missing before it",
            )  # fmt: skip
        if message.prev_hash != self.hash:
            before = "genesis" if self.position is None else f"position {self.position}"
            raise ContinuityError(
                position, "broken_link", f"ledger.events: position {position} links to "
                f"prev_hash {message.prev_hash} but {before} has hash {self.hash}",
            )  # fmt: skip
        self.position, self.hash = position, message.hash
        self._seen.append(message.hash)
        return True

    def _duplicate(self, message: LedgerMessage) -> bool:
        back = _done(self.position) - message.position  # 0: the last one accepted
        if back >= len(self._seen):
            return False  # older than the window: compared when it first arrived
        earlier = self._seen[len(self._seen) - 1 - back]
        if message.hash != earlier:
            raise ContinuityError(
                message.position, "conflict", f"ledger.events: position {message.position} "
                f"arrived again with hash {message.hash} but it had hash {earlier}",
            )  # fmt: skip
        return False

    def new(self, messages: Iterable[LedgerMessage]) -> Iterator[LedgerMessage]:
        """The messages to process: each position once, checked, in chain order."""
        for message in messages:
            if self.accept(message):
                yield message
