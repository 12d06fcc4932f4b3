"""The view tables, column by column. Migrations create them (``migrations/*/``); a test
checks that every backend's table has exactly these columns, in this order.

Insert-only tables carry ``position``, the ledger position of the event a row came
from; tables whose rows change carry ``positions``, every event applied, in order,
and ``stream_id``, the aggregate (``originator_id``) whose later events change them.
"""

from __future__ import annotations

from ledger.views import Column, Kind, TableSpec

__all__ = [
    "COMPLIANCE_CHECKS",
    "DEPLOYMENTS",
    "DORA_CHANGES",
    "DORA_REQUESTS",
    "MARKET_DATA_USAGE",
    "MODEL_VERSIONS",
    "ORDERS",
    "RISK_CALCULATIONS",
    "ROLLBACKS",
    "SHADOW_COMPARISONS",
    "SLO_BREACHES",
    "TRADE_DECISIONS",
    "TRANSACTIONS",
    "USER_ACTIONS",
]


def _table(name: str, key: str, columns: str) -> TableSpec:
    """A table from ``name kind`` lines; ``key`` names its key columns, comma-separated."""
    parsed = tuple(
        Column(n, Kind(k)) for n, k in (line.split() for line in columns.strip().splitlines())
    )
    return TableSpec(name, parsed, tuple(key.split(",")))


TRANSACTIONS = _table(
    "transactions",
    "execution_id",
    """
    execution_id text
    client_order_id text
    isin text
    instrument_description text
    cfi text
    notional_currency_1 text
    notional_currency_2 text
    venue text
    executing_entity_lei text
    buyer_lei text
    seller_lei text
    investment_decision text
    execution_decision text
    trading_capacity text
    quantity decimal
    price decimal
    currency text
    trading_time time
    status text
    recorded_by text
    recorded_at time
    amended_at time
    cancelled_at time
    correction_reason text
    positions positions
    stream_id text
    """,
)

ORDERS = _table(
    "orders",
    "client_order_id",
    """
    client_order_id text
    decision_id text
    isin text
    venue text
    side text
    quantity decimal
    limit_price decimal
    currency text
    trading_capacity text
    executing_entity_lei text
    investment_decision text
    execution_decision text
    status text
    placed_by text
    placed_at time
    amendments int
    amended_at time
    cancelled_at time
    reason text
    positions positions
    stream_id text
    """,
)

TRADE_DECISIONS = _table(
    "trade_decisions",
    "decision_id",
    """
    decision_id text
    model_id text
    model_version text
    strategy text
    isin text
    signal text
    confidence decimal
    lineage_hash text
    decided_by text
    decided_at time
    position int
    """,
)

MARKET_DATA_USAGE = _table(
    "market_data_usage",
    "usage_id",
    """
    usage_id text
    feed text
    isin text
    snapshot_hash text
    snapshot_time time
    purpose text
    used_by text
    used_at time
    position int
    """,
)

RISK_CALCULATIONS = _table(
    "risk_calculations",
    "calculation_id",
    """
    calculation_id text
    portfolio text
    metric text
    method text
    value decimal
    limit_value decimal
    currency text
    breached bool
    evidence json
    calculated_by text
    calculated_at time
    position int
    """,
)

COMPLIANCE_CHECKS = _table(
    "compliance_checks",
    "check_id",
    """
    check_id text
    client_order_id text
    control text
    passed bool
    observed decimal
    threshold decimal
    evidence json
    performed_by text
    performed_at time
    position int
    """,
)

DEPLOYMENTS = _table(
    "deployments",
    "change_ticket",
    """
    change_ticket text
    service text
    version text
    commit_hash text
    strategy text
    emergency bool
    requested_by text
    requested_at time
    approved_by text
    approved_at time
    approval text
    retroactive_due time
    started_by text
    started_at time
    finished_by text
    finished_at time
    outcome text
    rollback_id text
    rollback_level int
    rollback_trigger text
    sod_violations json
    positions positions
    stream_id text
    """,
)

ROLLBACKS = _table(
    "rollbacks",
    "rollback_id",
    """
    rollback_id text
    change_ticket text
    service text
    level int
    level_name text
    trigger text
    reason text
    evidence json
    executed_by text
    executed_at time
    position int
    """,
)

DORA_REQUESTS = _table(  # every change requested: what its lead time needs when it starts
    "dora_requests",
    "change_ticket",
    """
    change_ticket text
    service text
    requested_at time
    position int
    stream_id text
    """,
)

DORA_CHANGES = _table(  # one row per change that started: what DORA counts
    "dora_changes",
    "change_ticket",
    """
    change_ticket text
    service text
    requested_at time
    started_at time
    lead_time_seconds decimal
    failed bool
    restored_at time
    time_to_restore_seconds decimal
    positions positions
    stream_id text
    """,
)

USER_ACTIONS = _table(
    "user_actions",
    "action_id",
    """
    action_id text
    action text
    target text
    details json
    actor text
    occurred_at time
    position int
    """,
)

SHADOW_COMPARISONS = _table(
    "shadow_comparisons",
    "comparison_id",
    """
    comparison_id text
    model_id text
    live_version text
    shadow_version text
    window_start time
    window_end time
    samples int
    agreements int
    agreement_rate decimal
    recorded_by text
    recorded_at time
    position int
    """,
)

MODEL_VERSIONS = _table(
    "model_versions",
    "model_id,version",
    """
    model_id text
    version text
    training_data_hash text
    parameters_hash text
    description text
    registered_by text
    registered_at time
    position int
    """,
)

SLO_BREACHES = _table(
    "slo_breaches",
    "breach_id",
    """
    breach_id text
    slo text
    service text
    severity text
    rule text
    long_window_minutes int
    short_window_minutes int
    burn_rate_long decimal
    burn_rate_short decimal
    threshold decimal
    sli_long decimal
    sli_short decimal
    window_end time
    error_budget_remaining decimal
    recorded_by text
    recorded_at time
    position int
    """,
)
