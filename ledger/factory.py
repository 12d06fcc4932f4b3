"""The eventsourcing infrastructure factory of the ledger.

An application opts in with ``PERSISTENCE_MODULE=ledger.factory:LedgerFactory`` in
its environment; ``REGLEDGER_DATABASE_URL`` then picks the backend::

    >>> from eventsourcing.application import Application
    >>> app = Application(env={"PERSISTENCE_MODULE": "ledger.factory:LedgerFactory",
    ...                        "REGLEDGER_DATABASE_URL": "sqlite:///:memory:"})  # doctest: +SKIP
"""

from __future__ import annotations

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    ProcessRecorder,
    TrackingRecorder,
    Transcoder,
)
from eventsourcing.utils import Environment, EnvType

from .errors import ConfigurationError
from .recorders import ChainedApplicationRecorder, ChainedProcessRecorder, ChainedTrackingRecorder
from .settings import Settings
from .store import ChainStore
from .transcoder import LedgerTranscoder

__all__ = ["LedgerFactory", "PERSISTENCE_MODULE", "application_env", "open_store"]

PERSISTENCE_MODULE = "ledger.factory:LedgerFactory"


def application_env(settings: Settings) -> dict[str, str]:
    """The environment an eventsourcing ``Application`` needs to record into the ledger
    ``settings`` names: ``AuditTrail(env=application_env(settings))``."""
    return {
        "PERSISTENCE_MODULE": PERSISTENCE_MODULE,
        "REGLEDGER_DATABASE_URL": settings.database_url,
        "REGLEDGER_MAX_EVENT_BYTES": str(settings.max_event_bytes),
        "REGLEDGER_POOL_SIZE": str(settings.pool_size),
        "REGLEDGER_LOCK_TIMEOUT": str(settings.lock_timeout_s),
    }


def open_store(settings: Settings) -> ChainStore:
    """The chain store ``settings.database_url`` names (its driver imported only then)."""
    if settings.backend == "postgres":
        from .postgres import PostgresChainStore

        return PostgresChainStore(settings)
    from .sqlite import SQLiteChainStore

    return SQLiteChainStore(settings)


class LedgerFactory(InfrastructureFactory[TrackingRecorder]):
    """Builds chained recorders on the store ``REGLEDGER_DATABASE_URL`` names."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        self.settings = Settings.from_env(self.env)
        self.store = open_store(self.settings)

    def transcoder(self) -> Transcoder:
        """:class:`~ledger.transcoder.LedgerTranscoder` (JSONTranscoder's bytes, faster),
        unless ``TRANSCODER_TOPIC`` names another."""
        if self.env.get(self.TRANSCODER_TOPIC):
            return super().transcoder()
        return LedgerTranscoder()

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        if purpose == "snapshots":
            raise ConfigurationError(
                "IS_SNAPSHOTTING_ENABLED is not supported: the ledger records facts only; "
                "read models belong in projections. Unset IS_SNAPSHOTTING_ENABLED"
            )
        return ChainedApplicationRecorder(self.store, max_event_bytes=self.settings.max_event_bytes)

    def application_recorder(self) -> ApplicationRecorder:
        return ChainedApplicationRecorder(self.store, max_event_bytes=self.settings.max_event_bytes)

    def tracking_recorder(
        self, tracking_recorder_class: type[TrackingRecorder] | None = None
    ) -> TrackingRecorder:
        if tracking_recorder_class is None:
            return ChainedTrackingRecorder(
                self.store, max_event_bytes=self.settings.max_event_bytes
            )
        return tracking_recorder_class(self.store)  # type: ignore[call-arg]

    def process_recorder(self) -> ProcessRecorder:
        return ChainedProcessRecorder(self.store, max_event_bytes=self.settings.max_event_bytes)

    def close(self) -> None:
        self.store.close()
