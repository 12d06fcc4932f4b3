"""Model versions, and shadow-mode comparisons of a candidate against the live model."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from .base import AuditAggregate, AuditCreated, natural_id

__all__ = ["ModelVersion", "ShadowComparison"]


class ModelVersion(AuditAggregate):
    """A trading model version, pinned by the hashes of its training data and parameters."""

    class Registered(AuditCreated):
        model_id: str
        version: str
        training_data_hash: str
        parameters_hash: str
        description: str

    @staticmethod
    def create_id(model_id: str, version: str, **_: Any) -> UUID:
        return natural_id("model-version", f"{model_id}@{version}")

    @event(Registered)
    def __init__(
        self,
        *,
        model_id: str,
        version: str,
        training_data_hash: str,
        parameters_hash: str,
        description: str,
        actor: str,
        occurred_at: datetime,
        source_event_id: str | None,
    ) -> None:
        self.model_id = model_id
        self.release = version  # not "version": that is the aggregate's own counter


class ShadowComparison(AuditAggregate):
    """Live and shadow signals over one window: how often the candidate agreed."""

    class Recorded(AuditCreated):
        comparison_id: str
        model_id: str
        live_version: str
        shadow_version: str
        window_start: datetime
        window_end: datetime
        samples: int
        agreements: int
        agreement_rate: Decimal

    @staticmethod
    def create_id(comparison_id: str, **_: Any) -> UUID:
        return natural_id("shadow-comparison", comparison_id)

    @event(Recorded)
    def __init__(
        self,
        *,
        comparison_id: str,
        model_id: str,
        live_version: str,
        shadow_version: str,
        window_start: datetime,
        window_end: datetime,
        samples: int,
        agreements: int,
        agreement_rate: Decimal,
        actor: str,
        occurred_at: datetime,
        source_event_id: str | None,
    ) -> None:
        self.agreement_rate = agreement_rate
