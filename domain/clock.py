"""Where the domain gets "now": the wall clock, or a simulated one (the demo, tests).

eventsourcing stamps each event with ``create_timestamp()``; the audit events take
it from here, so a simulated trading day records the same bytes every time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

__all__ = ["now", "use_clock"]


def _wall_clock() -> datetime:
    return datetime.now(UTC)


_clock: ContextVar[Callable[[], datetime]] = ContextVar("regledger_clock", default=_wall_clock)


def now() -> datetime:
    """The current time, UTC, from the clock in use.

    >>> now().tzinfo is UTC
    True
    """
    return _clock.get()()


@contextmanager
def use_clock(clock: Callable[[], datetime]) -> Iterator[None]:
    """Use ``clock`` for "now" inside the block.

    >>> with use_clock(lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC)):
    ...     now().isoformat()
    '2026-03-02T09:00:00+00:00'
    """
    token = _clock.set(clock)
    try:
        yield
    finally:
        _clock.reset(token)
