-- The projection (read-model) tables and two time-series views over them (see the
-- PostgreSQL migration). projections/tables.py is the column spec: each table here has
-- exactly its columns, in its order, and its key as the primary key. SQLite has no
-- decimal, timestamp, boolean or array types (ledger/sqlite_views.py): decimals are TEXT
-- exactly as written, times TEXT in ISO 8601 UTC with microseconds
-- (2026-03-02T07:15:36.005000+00:00, which sorts as time does), booleans 0/1, json and
-- positions compact JSON TEXT.

CREATE TABLE transactions (
    execution_id           TEXT    NOT NULL,
    client_order_id        TEXT,
    isin                   TEXT    NOT NULL,
    instrument_description TEXT,
    cfi                    TEXT,
    notional_currency_1    TEXT,
    notional_currency_2    TEXT,
    venue                  TEXT    NOT NULL,
    executing_entity_lei   TEXT    NOT NULL,
    buyer_lei              TEXT    NOT NULL,
    seller_lei             TEXT    NOT NULL,
    investment_decision    TEXT    NOT NULL,
    execution_decision     TEXT    NOT NULL,
    trading_capacity       TEXT    NOT NULL,
    quantity               TEXT    NOT NULL,
    price                  TEXT    NOT NULL,
    currency               TEXT    NOT NULL,
    trading_time           TEXT    NOT NULL,
    status                 TEXT    NOT NULL CHECK (status IN ('new', 'amended', 'cancelled')),
    recorded_by            TEXT    NOT NULL,
    recorded_at            TEXT    NOT NULL,
    amended_at             TEXT,
    cancelled_at           TEXT,
    correction_reason      TEXT,
    positions              TEXT    NOT NULL,
    stream_id              TEXT    NOT NULL,
    PRIMARY KEY (execution_id)
);

CREATE TABLE orders (
    client_order_id      TEXT    NOT NULL,
    decision_id          TEXT,
    isin                 TEXT    NOT NULL,
    venue                TEXT    NOT NULL,
    side                 TEXT    NOT NULL,
    quantity             TEXT    NOT NULL,
    limit_price          TEXT,
    currency             TEXT    NOT NULL,
    trading_capacity     TEXT    NOT NULL,
    executing_entity_lei TEXT    NOT NULL,
    investment_decision  TEXT    NOT NULL,
    execution_decision   TEXT    NOT NULL,
    status               TEXT    NOT NULL CHECK (status IN ('new', 'amended', 'cancelled')),
    placed_by            TEXT    NOT NULL,
    placed_at            TEXT    NOT NULL,
    amendments           INTEGER NOT NULL,
    amended_at           TEXT,
    cancelled_at         TEXT,
    reason               TEXT,
    positions            TEXT    NOT NULL,
    stream_id            TEXT    NOT NULL,
    PRIMARY KEY (client_order_id)
);

CREATE TABLE trade_decisions (
    decision_id   TEXT    NOT NULL,
    model_id      TEXT    NOT NULL,
    model_version TEXT    NOT NULL,
    strategy      TEXT    NOT NULL,
    isin          TEXT    NOT NULL,
    signal        TEXT    NOT NULL,
    confidence    TEXT    NOT NULL,
    lineage_hash  TEXT    NOT NULL,
    decided_by    TEXT    NOT NULL,
    decided_at    TEXT    NOT NULL,
    position      INTEGER NOT NULL,
    PRIMARY KEY (decision_id)
);

CREATE TABLE market_data_usage (
    usage_id      TEXT    NOT NULL,
    feed          TEXT    NOT NULL,
    isin          TEXT    NOT NULL,
    snapshot_hash TEXT    NOT NULL,
    snapshot_time TEXT    NOT NULL,
    purpose       TEXT    NOT NULL,
    used_by       TEXT    NOT NULL,
    used_at       TEXT    NOT NULL,
    position      INTEGER NOT NULL,
    PRIMARY KEY (usage_id)
);

CREATE TABLE risk_calculations (
    calculation_id TEXT    NOT NULL,
    portfolio      TEXT    NOT NULL,
    metric         TEXT    NOT NULL,
    method         TEXT    NOT NULL,
    value          TEXT    NOT NULL,
    limit_value    TEXT    NOT NULL,
    currency       TEXT    NOT NULL,
    breached       INTEGER NOT NULL,
    evidence       TEXT    NOT NULL,
    calculated_by  TEXT    NOT NULL,
    calculated_at  TEXT    NOT NULL,
    position       INTEGER NOT NULL,
    PRIMARY KEY (calculation_id)
);

CREATE TABLE compliance_checks (
    check_id        TEXT    NOT NULL,
    client_order_id TEXT    NOT NULL,
    control         TEXT    NOT NULL,
    passed          INTEGER NOT NULL,
    observed        TEXT    NOT NULL,
    threshold       TEXT    NOT NULL,
    evidence        TEXT    NOT NULL,
    performed_by    TEXT    NOT NULL,
    performed_at    TEXT    NOT NULL,
    position        INTEGER NOT NULL,
    PRIMARY KEY (check_id)
);

CREATE TABLE deployments (
    change_ticket    TEXT    NOT NULL,
    service          TEXT    NOT NULL,
    version          TEXT    NOT NULL,
    commit_hash      TEXT    NOT NULL,
    strategy         TEXT    NOT NULL,
    emergency        INTEGER NOT NULL,
    requested_by     TEXT    NOT NULL,
    requested_at     TEXT    NOT NULL,
    approved_by      TEXT,
    approved_at      TEXT,
    approval         TEXT    CHECK (approval IN ('prior', 'retroactive', 'retroactive_late')),
    retroactive_due  TEXT,
    started_by       TEXT,
    started_at       TEXT,
    finished_by      TEXT,
    finished_at      TEXT,
    outcome          TEXT    NOT NULL
        CHECK (outcome IN ('requested', 'approved', 'started', 'promoted', 'rolled_back')),
    rollback_id      TEXT,
    rollback_level   INTEGER,
    rollback_trigger TEXT,
    sod_violations   TEXT,
    positions        TEXT    NOT NULL,
    stream_id        TEXT    NOT NULL,
    PRIMARY KEY (change_ticket)
);

CREATE TABLE rollbacks (
    rollback_id   TEXT    NOT NULL,
    change_ticket TEXT    NOT NULL,
    service       TEXT    NOT NULL,
    level         INTEGER NOT NULL,
    level_name    TEXT    NOT NULL,
    trigger       TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    evidence      TEXT    NOT NULL,
    executed_by   TEXT    NOT NULL,
    executed_at   TEXT    NOT NULL,
    position      INTEGER NOT NULL,
    PRIMARY KEY (rollback_id)
);

-- Changes requested and not started yet: what a change's lead time needs.
CREATE TABLE dora_requests (
    change_ticket TEXT    NOT NULL,
    service       TEXT    NOT NULL,
    requested_at  TEXT    NOT NULL,
    position      INTEGER NOT NULL,
    stream_id     TEXT    NOT NULL,
    PRIMARY KEY (change_ticket)
);

-- One row per change that started: what DORA counts.
CREATE TABLE dora_changes (
    change_ticket           TEXT    NOT NULL,
    service                 TEXT    NOT NULL,
    requested_at            TEXT    NOT NULL,
    started_at              TEXT    NOT NULL,
    lead_time_seconds       TEXT    NOT NULL,
    failed                  INTEGER NOT NULL,
    restored_at             TEXT,
    time_to_restore_seconds TEXT,
    positions               TEXT    NOT NULL,
    stream_id               TEXT    NOT NULL,
    PRIMARY KEY (change_ticket)
);

CREATE TABLE user_actions (
    action_id   TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    details     TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    occurred_at TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    PRIMARY KEY (action_id)
);

CREATE TABLE shadow_comparisons (
    comparison_id  TEXT    NOT NULL,
    model_id       TEXT    NOT NULL,
    live_version   TEXT    NOT NULL,
    shadow_version TEXT    NOT NULL,
    window_start   TEXT    NOT NULL,
    window_end     TEXT    NOT NULL,
    samples        INTEGER NOT NULL,
    agreements     INTEGER NOT NULL,
    agreement_rate TEXT    NOT NULL,
    recorded_by    TEXT    NOT NULL,
    recorded_at    TEXT    NOT NULL,
    position       INTEGER NOT NULL,
    PRIMARY KEY (comparison_id)
);

CREATE TABLE model_versions (
    model_id           TEXT    NOT NULL,
    version            TEXT    NOT NULL,
    training_data_hash TEXT    NOT NULL,
    parameters_hash    TEXT    NOT NULL,
    description        TEXT    NOT NULL,
    registered_by      TEXT    NOT NULL,
    registered_at      TEXT    NOT NULL,
    position           INTEGER NOT NULL,
    PRIMARY KEY (model_id, version)
);

-- A row whose later events change it is found by its aggregate: one row per stream.
CREATE UNIQUE INDEX transactions_stream_id ON transactions (stream_id);
CREATE UNIQUE INDEX orders_stream_id ON orders (stream_id);
CREATE UNIQUE INDEX deployments_stream_id ON deployments (stream_id);
CREATE UNIQUE INDEX dora_requests_stream_id ON dora_requests (stream_id);
CREATE UNIQUE INDEX dora_changes_stream_id ON dora_changes (stream_id);

-- The lookups the projections and reports make.
CREATE INDEX orders_decision_id ON orders (decision_id);
CREATE INDEX transactions_client_order_id ON transactions (client_order_id);
CREATE INDEX compliance_checks_client_order_id ON compliance_checks (client_order_id);
CREATE INDEX compliance_checks_control ON compliance_checks (control, performed_at);
CREATE INDEX market_data_usage_snapshot_hash ON market_data_usage (snapshot_hash);
CREATE INDEX trade_decisions_lineage_hash ON trade_decisions (lineage_hash);
CREATE INDEX risk_calculations_series ON risk_calculations (portfolio, metric, position);
CREATE INDEX rollbacks_change_ticket ON rollbacks (change_ticket);
CREATE INDEX user_actions_actor ON user_actions (actor, occurred_at);

-- The views have the PostgreSQL views' columns. Hours and days are TEXT in the stored
-- time format (UTC); averages and the rate are REAL (SQLite has no exact decimal
-- arithmetic), rounded as on PostgreSQL.
CREATE VIEW compliance_failures_hourly AS
SELECT strftime('%Y-%m-%dT%H:00:00.000000+00:00', performed_at) AS hour,
       control,
       count(*) AS checks,
       count(CASE WHEN passed = 0 THEN 1 END) AS failures
FROM compliance_checks
GROUP BY 1, 2;

CREATE VIEW dora_metrics AS
SELECT service,
       strftime('%Y-%m-%dT00:00:00.000000+00:00', started_at) AS day,
       count(*) AS deployments,
       round(avg(CAST(lead_time_seconds AS REAL)), 3) AS lead_time_seconds,
       round(CAST(count(CASE WHEN failed = 1 THEN 1 END) AS REAL) / count(*), 4)
           AS change_failure_rate,
       round(avg(CASE WHEN failed = 1 THEN CAST(time_to_restore_seconds AS REAL) END), 3)
           AS time_to_restore_seconds
FROM dora_changes
GROUP BY 1, 2;
