"""Messages as a worker reads them off a topic, and what it does with one it cannot use.

A worker that cannot use a message (malformed, or refused by the domain) never drops it:
it sends the original bytes, unchanged, to a dead-letter topic (``audit.dlq``,
``telemetry.dlq``), with the reason in the record's headers, then carries on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["DLQ_HEADERS", "RawMessage", "Rejection"]

# Header names of a dead-letter record, in the order they are written.
DLQ_HEADERS = (
    "regledger-error",  # one line: what is wrong
    "regledger-field",  # the field at fault ("message" when the whole message is)
    "regledger-topic",  # where the message was read
    "regledger-partition",
    "regledger-offset",
)


class RawMessage(NamedTuple):
    """One record as consumed: where it came from and its bytes, undecoded (a named tuple:
    a worker makes one per record, and a tuple is made in half the time of a dataclass)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class Rejection:
    """A message a worker could not use: the field at fault and why."""

    message: RawMessage
    field: str
    error: str

    def headers(self) -> list[tuple[str, bytes]]:
        """The dead-letter record's headers (UTF-8 values), named as in DLQ_HEADERS.

        >>> m = RawMessage("audit.trading", 0, 7, None, b"{")
        >>> Rejection(m, "message", "is not JSON").headers()[1:3]
        [('regledger-field', b'message'), ('regledger-topic', b'audit.trading')]
        """
        values = (
            self.error,
            self.field,
            self.message.topic,
            str(self.message.partition),
            str(self.message.offset),
        )
        return [(name, value.encode()) for name, value in zip(DLQ_HEADERS, values, strict=True)]
