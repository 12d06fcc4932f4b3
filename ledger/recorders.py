"""eventsourcing recorders on a chain store, so an unchanged ``Application``,
``ProcessApplication`` or ``ProjectionRunner`` runs on the ledger.

Notification ids are ``position + 1``: the library numbers its application
sequence from 1, the ledger's positions start at 0.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    ApplicationRecorder,
    ListenNotifySubscription,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)

from .canonical import originator_id_text, originator_id_value
from .store import ChainStore
from .validation import BatchValidator

__all__ = [
    "ChainedApplicationRecorder",
    "ChainedProcessRecorder",
    "ChainedTrackingRecorder",
    "LedgerSubscription",
]


class _OnStore:
    def __init__(
        self, store: ChainStore, *, max_event_bytes: int = 1_048_576, check_topics: bool = True
    ) -> None:
        self.store = store
        self.max_event_bytes = max_event_bytes
        self._known_topics: set[str] | None = set() if check_topics else None


class ChainedApplicationRecorder(_OnStore, ApplicationRecorder):
    """Appends to the hash chain; reads aggregates and the notification log from it."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int]:
        tracking: Tracking | None = kwargs.get("tracking")
        if not stored_events and tracking is None:
            return []
        validator = BatchValidator(
            max_event_bytes=self.max_event_bytes, known_topics=self._known_topics
        )
        sources = kwargs.get("sources", ())
        positions = self.store.append(stored_events, validator, tracking, sources)
        return [position + 1 for position in positions]

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        return [
            StoredEvent(originator_id, e.originator_version, e.topic, e.state)
            for e in self.store.select_events(
                originator_id_text(originator_id), gt=gt, lte=lte, desc=desc, limit=limit
            )
        ]

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        # Notification n is position n - 1.
        first = 0 if start is None else max(start - 1 if inclusive_of_start else start, 0)
        last = None if stop is None else stop - 1
        return [
            Notification(
                id=r.position + 1,
                originator_id=originator_id_value(r.originator_id),
                originator_version=r.originator_version,
                topic=r.topic,
                state=r.state,
            )
            for r in self.store.select_records(first, last, topics, limit)
        ]

    def max_notification_id(self) -> int | None:
        last = self.store.max_position()
        return None if last is None else last + 1

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return LedgerSubscription(self, gt=gt, topics=topics)


class ChainedTrackingRecorder(_OnStore, TrackingRecorder):
    """Positions of applications and projections processing the ledger."""

    def insert_tracking(self, tracking: Tracking) -> None:
        self.store.insert_tracking(tracking)

    def max_tracking_id(self, application_name: str) -> int | None:
        return self.store.max_tracking_id(application_name)


class ChainedProcessRecorder(ChainedTrackingRecorder, ChainedApplicationRecorder, ProcessRecorder):
    """Appends events and records tracking in one transaction."""


class LedgerSubscription(ListenNotifySubscription[ChainedApplicationRecorder]):
    """Yields notifications after ``gt``, then new ones as writers append them."""

    def __init__(
        self,
        recorder: ChainedApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._watch_thread = threading.Thread(target=self._watch, daemon=True)
        self._watch_thread.start()

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        try:
            super().__exit__(*args, **kwargs)
        finally:
            self._watch_thread.join()

    def _watch(self) -> None:
        try:
            self._recorder.store.watch(
                lambda: self._has_been_stopped or self._thread_error is not None,
                self._has_been_notified.set,
            )
        except BaseException as exc:  # surfaced by __next__, as the library does
            if self._thread_error is None:
                self._thread_error = exc
            self.stop()
