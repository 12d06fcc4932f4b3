"""Change management and oversight views: deployments, rollbacks, DORA metrics, user
actions, shadow-mode comparisons and model versions."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from domain.activity import UserAction
from domain.deployments import RETROACTIVE_APPROVAL_WINDOW, ROLLBACK_LEVELS, Deployment, Rollback
from domain.models import ModelVersion, ShadowComparison
from domain.reliability import SloBreach
from ledger.views import Row

from .core import Fact, Projection, Rows, copy_event, topic
from .tables import (
    DEPLOYMENTS,
    DORA_CHANGES,
    DORA_REQUESTS,
    MODEL_VERSIONS,
    ROLLBACKS,
    SHADOW_COMPARISONS,
    SLO_BREACHES,
    USER_ACTIONS,
)

__all__ = [
    "DEPLOYMENTS_VIEW",
    "DORA_VIEW",
    "MODEL_VERSIONS_VIEW",
    "ROLLBACKS_VIEW",
    "SHADOW_COMPARISONS_VIEW",
    "SLO_BREACHES_VIEW",
    "USER_ACTIONS_VIEW",
    "seconds_between",
]


def seconds_between(start: datetime, end: datetime) -> Decimal:
    """``end - start`` in seconds, exact to the microsecond: ``Decimal('2700.000000')``."""
    return Decimal((end - start) // timedelta(microseconds=1)).scaleb(-6)


# --- deployments --------------------------------------------------------------------------


def _requested(rows: Rows, fact: Fact) -> None:
    rows.insert(
        "deployments",
        {
            "change_ticket": fact["change_ticket"],
            "service": fact["service"],
            "version": fact["version"],
            "commit_hash": fact["commit"],
            "strategy": fact["strategy"],
            "emergency": fact["emergency"],
            "requested_by": fact["actor"],
            "requested_at": fact["occurred_at"],
            "approved_by": None,
            "approved_at": None,
            "approval": None,
            "retroactive_due": None,
            "started_by": None,
            "started_at": None,
            "finished_by": None,
            "finished_at": None,
            "outcome": "requested",
            "rollback_id": None,
            "rollback_level": None,
            "rollback_trigger": None,
            "sod_violations": [],
            "positions": [fact.position],
            "stream_id": fact.originator_id,
        },
    )


def _approve(row: Row, fact: Fact, approval: str) -> None:
    row.update(approved_by=fact["actor"], approved_at=fact["occurred_at"], approval=approval)
    # The domain refuses this; the view does not trust every writer the ledger ever had.
    if row["approved_by"] == row["requested_by"]:
        row["sod_violations"] = [
            *row["sod_violations"],
            f"approved by its requester {row['requested_by']}",
        ]


def _approved(rows: Rows, fact: Fact) -> None:
    row = rows.change_stream("deployments", fact)
    _approve(row, fact, "prior")
    row["outcome"] = "approved"


def _retroactively_approved(rows: Rows, fact: Fact) -> None:
    _approve(
        rows.change_stream("deployments", fact),
        fact,
        "retroactive_late" if fact["late"] else "retroactive",
    )


def _started(rows: Rows, fact: Fact) -> None:
    row = rows.change_stream("deployments", fact)
    row.update(started_by=fact["actor"], started_at=fact["occurred_at"], outcome="started")
    if not fact["approved"]:
        row["retroactive_due"] = fact["occurred_at"] + RETROACTIVE_APPROVAL_WINDOW


def _promoted(rows: Rows, fact: Fact) -> None:
    row = rows.change_stream("deployments", fact)
    row.update(finished_by=fact["actor"], finished_at=fact["occurred_at"], outcome="promoted")


def _rolled_back(rows: Rows, fact: Fact) -> None:
    row = rows.change_stream("deployments", fact)
    row.update(
        finished_by=fact["actor"],
        finished_at=fact["occurred_at"],
        outcome="rolled_back",
        rollback_id=fact["rollback_id"],
        rollback_level=fact["level"],
        rollback_trigger=fact["trigger"],
    )


DEPLOYMENTS_VIEW = Projection(
    name="deployments",
    description="one row per change: who requested, approved, started and finished it, when",
    tables=(DEPLOYMENTS,),
    handlers={
        topic(Deployment.Requested): _requested,
        topic(Deployment.Approved): _approved,
        topic(Deployment.RetroactivelyApproved): _retroactively_approved,
        topic(Deployment.Started): _started,
        topic(Deployment.Promoted): _promoted,
        topic(Deployment.RolledBack): _rolled_back,
    },
)


def _rollback_executed(rows: Rows, fact: Fact) -> None:
    rows.insert(
        "rollbacks",
        {
            "rollback_id": fact["rollback_id"],
            "change_ticket": fact["change_ticket"],
            "service": fact["service"],
            "level": fact["level"],
            "level_name": ROLLBACK_LEVELS[fact["level"]],
            "trigger": fact["trigger"],
            "reason": fact["reason"],
            "evidence": fact["evidence"],
            "executed_by": fact["actor"],
            "executed_at": fact["occurred_at"],
            "position": fact.position,
        },
    )


ROLLBACKS_VIEW = Projection(
    name="rollbacks",
    description="one row per rollback: level, trigger, reason and evidence",
    tables=(ROLLBACKS,),
    handlers={topic(Rollback.Executed): _rollback_executed},
)

SLO_BREACHES_VIEW = Projection(
    name="slo_breaches",
    description="one row per SLO burn-rate alert that fired: windows, burn rates, budget left",
    tables=(SLO_BREACHES,),
    handlers={
        topic(SloBreach.Recorded): copy_event(
            "slo_breaches",
            (
                "breach_id",
                "slo",
                "service",
                "severity",
                "rule",
                "long_window_minutes",
                "short_window_minutes",
                "burn_rate_long",
                "burn_rate_short",
                "threshold",
                "sli_long",
                "sli_short",
                "window_end",
                "error_budget_remaining",
            ),  # fmt: skip
            by="recorded_by",
            at="recorded_at",
        )
    },
)


# --- DORA ---------------------------------------------------------------------------------


def _dora_requested(rows: Rows, fact: Fact) -> None:
    rows.insert(
        "dora_requests",
        {
            "change_ticket": fact["change_ticket"],
            "service": fact["service"],
            "requested_at": fact["occurred_at"],
            "position": fact.position,
            "stream_id": fact.originator_id,
        },
    )


def _dora_started(rows: Rows, fact: Fact) -> None:
    request = rows.get("dora_requests", stream_id=fact.originator_id)
    rows.insert(
        "dora_changes",
        {
            "change_ticket": request["change_ticket"],
            "service": request["service"],
            "requested_at": request["requested_at"],
            "started_at": fact["occurred_at"],
            "lead_time_seconds": seconds_between(request["requested_at"], fact["occurred_at"]),
            "failed": False,
            "restored_at": None,
            "time_to_restore_seconds": None,
            "positions": [request["position"], fact.position],
            "stream_id": fact.originator_id,
        },
    )


def _dora_rolled_back(rows: Rows, fact: Fact) -> None:
    row = rows.change_stream("dora_changes", fact)
    row.update(
        failed=True,
        restored_at=fact["occurred_at"],
        time_to_restore_seconds=seconds_between(row["started_at"], fact["occurred_at"]),
    )


_NO_DORA_EFFECT = "approval does not move a DORA metric: lead time runs from request to start"

DORA_VIEW = Projection(
    name="dora_metrics",
    description="DORA per service and day: deployments, lead time, change failure rate, "
    "time to restore (the dora_metrics view over dora_changes)",
    tables=(DORA_REQUESTS, DORA_CHANGES),
    handlers={
        topic(Deployment.Requested): _dora_requested,
        topic(Deployment.Started): _dora_started,
        topic(Deployment.RolledBack): _dora_rolled_back,
    },
    ignores={
        topic(Deployment.Approved): _NO_DORA_EFFECT,
        topic(Deployment.RetroactivelyApproved): _NO_DORA_EFFECT,
        topic(Deployment.Promoted): "a change counts when it starts; promoting it changes "
        "no DORA metric (a later rollback still counts it as failed)",
    },
)


# --- people and models --------------------------------------------------------------------


_user_action = copy_event(
    "user_actions", ("action_id", "action", "target", "details"), by="actor", at="occurred_at"
)


USER_ACTIONS_VIEW = Projection(
    name="user_actions",
    description="one row per person's action: logins, permission and configuration changes, "
    "overrides",
    tables=(USER_ACTIONS,),
    handlers={topic(UserAction.Recorded): _user_action},
)


_shadow_compared = copy_event(
    "shadow_comparisons",
    ("comparison_id", "model_id", "live_version", "shadow_version", "window_start",
     "window_end", "samples", "agreements", "agreement_rate"),
    by="recorded_by",
    at="recorded_at",
)  # fmt: skip


SHADOW_COMPARISONS_VIEW = Projection(
    name="shadow_comparisons",
    description="one row per shadow-mode window: how often the candidate agreed with live",
    tables=(SHADOW_COMPARISONS,),
    handlers={topic(ShadowComparison.Recorded): _shadow_compared},
)


_model_registered = copy_event(
    "model_versions",
    ("model_id", "version", "training_data_hash", "parameters_hash", "description"),
    by="registered_by",
    at="registered_at",
)


MODEL_VERSIONS_VIEW = Projection(
    name="model_versions",
    description="one row per model version, pinned by its training-data and parameter hashes",
    tables=(MODEL_VERSIONS,),
    handlers={topic(ModelVersion.Registered): _model_registered},
)
