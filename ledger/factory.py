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
)
from eventsourcing.utils import Environment, EnvType

from .errors import ConfigurationError
from .recorders import ChainedApplicationRecorder, ChainedProcessRecorder, ChainedTrackingRecorder
from .settings import Settings
from .store import ChainStore

__all__ = ["LedgerFactory", "PERSISTENCE_MODULE", "open_store"]

PERSISTENCE_MODULE = "ledger.factory:LedgerFactory"


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
