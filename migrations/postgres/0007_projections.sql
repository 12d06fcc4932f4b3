-- The projection (read-model) tables and two time-series views over them.
-- projections/tables.py is the column spec: each table here has exactly its columns, in
-- its order, and its key as the primary key (a test checks both). Kinds map to types:
-- text -> text, int -> bigint, decimal -> numeric (unconstrained: the scale written is
-- kept), time -> timestamptz, bool -> boolean, json -> jsonb, positions -> bigint[].
-- Nullable columns are the ones an event may leave absent (or that are set later).
-- Tables whose rows change are also found by stream_id (one row per aggregate).
--
-- The views (same columns on plain PostgreSQL and on TimescaleDB):
--   compliance_failures_hourly (hour, control, checks, failures)
--   dora_metrics (service, day, deployments, lead_time_seconds, change_failure_rate,
--                 time_to_restore_seconds)
-- Buckets are UTC hours / days.
--
-- The projection runner writes as regledger_writer; rows are rebuilt from the ledger,
-- so unlike ledger_events these tables may be updated and emptied (`projections
-- rebuild --replace`).

CREATE TABLE transactions (
    execution_id           text        NOT NULL,
    client_order_id        text,
    isin                   text        NOT NULL,
    instrument_description text,
    cfi                    text,
    notional_currency_1    text,
    notional_currency_2    text,
    venue                  text        NOT NULL,
    executing_entity_lei   text        NOT NULL,
    buyer_lei              text        NOT NULL,
    seller_lei             text        NOT NULL,
    investment_decision    text        NOT NULL,
    execution_decision     text        NOT NULL,
    trading_capacity       text        NOT NULL,
    quantity               numeric     NOT NULL,
    price                  numeric     NOT NULL,
    currency               text        NOT NULL,
    trading_time           timestamptz NOT NULL,
    status                 text        NOT NULL CHECK (status IN ('new', 'amended', 'cancelled')),
    recorded_by            text        NOT NULL,
    recorded_at            timestamptz NOT NULL,
    amended_at             timestamptz,
    cancelled_at           timestamptz,
    correction_reason      text,
    positions              bigint[]    NOT NULL,
    stream_id              text        NOT NULL,
    PRIMARY KEY (execution_id)
);

CREATE TABLE orders (
    client_order_id      text        NOT NULL,
    decision_id          text,
    isin                 text        NOT NULL,
    venue                text        NOT NULL,
    side                 text        NOT NULL,
    quantity             numeric     NOT NULL,
    limit_price          numeric,
    currency             text        NOT NULL,
    trading_capacity     text        NOT NULL,
    executing_entity_lei text        NOT NULL,
    investment_decision  text        NOT NULL,
    execution_decision   text        NOT NULL,
    status               text        NOT NULL CHECK (status IN ('new', 'amended', 'cancelled')),
    placed_by            text        NOT NULL,
    placed_at            timestamptz NOT NULL,
    amendments           bigint      NOT NULL,
    amended_at           timestamptz,
    cancelled_at         timestamptz,
    reason               text,
    positions            bigint[]    NOT NULL,
    stream_id            text        NOT NULL,
    PRIMARY KEY (client_order_id)
);

CREATE TABLE trade_decisions (
    decision_id   text        NOT NULL,
    model_id      text        NOT NULL,
    model_version text        NOT NULL,
    strategy      text        NOT NULL,
    isin          text        NOT NULL,
    signal        text        NOT NULL,
    confidence    numeric     NOT NULL,
    lineage_hash  text        NOT NULL,
    decided_by    text        NOT NULL,
    decided_at    timestamptz NOT NULL,
    position      bigint      NOT NULL,
    PRIMARY KEY (decision_id)
);

CREATE TABLE market_data_usage (
    usage_id      text        NOT NULL,
    feed          text        NOT NULL,
    isin          text        NOT NULL,
    snapshot_hash text        NOT NULL,
    snapshot_time timestamptz NOT NULL,
    purpose       text        NOT NULL,
    used_by       text        NOT NULL,
    used_at       timestamptz NOT NULL,
    position      bigint      NOT NULL,
    PRIMARY KEY (usage_id)
);

CREATE TABLE risk_calculations (
    calculation_id text        NOT NULL,
    portfolio      text        NOT NULL,
    metric         text        NOT NULL,
    method         text        NOT NULL,
    value          numeric     NOT NULL,
    limit_value    numeric     NOT NULL,
    currency       text        NOT NULL,
    breached       boolean     NOT NULL,
    evidence       jsonb       NOT NULL,
    calculated_by  text        NOT NULL,
    calculated_at  timestamptz NOT NULL,
    position       bigint      NOT NULL,
    PRIMARY KEY (calculation_id)
);

CREATE TABLE compliance_checks (
    check_id        text        NOT NULL,
    client_order_id text        NOT NULL,
    control         text        NOT NULL,
    passed          boolean     NOT NULL,
    observed        numeric     NOT NULL,
    threshold       numeric     NOT NULL,
    evidence        jsonb       NOT NULL,
    performed_by    text        NOT NULL,
    performed_at    timestamptz NOT NULL,
    position        bigint      NOT NULL,
    PRIMARY KEY (check_id)
);

CREATE TABLE deployments (
    change_ticket    text        NOT NULL,
    service          text        NOT NULL,
    version          text        NOT NULL,
    commit_hash      text        NOT NULL,
    strategy         text        NOT NULL,
    emergency        boolean     NOT NULL,
    requested_by     text        NOT NULL,
    requested_at     timestamptz NOT NULL,
    approved_by      text,
    approved_at      timestamptz,
    approval         text        CHECK (approval IN ('prior', 'retroactive', 'retroactive_late')),
    retroactive_due  timestamptz,
    started_by       text,
    started_at       timestamptz,
    finished_by      text,
    finished_at      timestamptz,
    outcome          text        NOT NULL
        CHECK (outcome IN ('requested', 'approved', 'started', 'promoted', 'rolled_back')),
    rollback_id      text,
    rollback_level   bigint,
    rollback_trigger text,
    sod_violations   jsonb,
    positions        bigint[]    NOT NULL,
    stream_id        text        NOT NULL,
    PRIMARY KEY (change_ticket)
);

CREATE TABLE rollbacks (
    rollback_id   text        NOT NULL,
    change_ticket text        NOT NULL,
    service       text        NOT NULL,
    level         bigint      NOT NULL,
    level_name    text        NOT NULL,
    trigger       text        NOT NULL,
    reason        text        NOT NULL,
    evidence      jsonb       NOT NULL,
    executed_by   text        NOT NULL,
    executed_at   timestamptz NOT NULL,
    position      bigint      NOT NULL,
    PRIMARY KEY (rollback_id)
);

-- Changes requested and not started yet: what a change's lead time needs.
CREATE TABLE dora_requests (
    change_ticket text        NOT NULL,
    service       text        NOT NULL,
    requested_at  timestamptz NOT NULL,
    position      bigint      NOT NULL,
    stream_id     text        NOT NULL,
    PRIMARY KEY (change_ticket)
);

-- One row per change that started: what DORA counts.
CREATE TABLE dora_changes (
    change_ticket           text        NOT NULL,
    service                 text        NOT NULL,
    requested_at            timestamptz NOT NULL,
    started_at              timestamptz NOT NULL,
    lead_time_seconds       numeric     NOT NULL,
    failed                  boolean     NOT NULL,
    restored_at             timestamptz,
    time_to_restore_seconds numeric,
    positions               bigint[]    NOT NULL,
    stream_id               text        NOT NULL,
    PRIMARY KEY (change_ticket)
);

CREATE TABLE user_actions (
    action_id   text        NOT NULL,
    action      text        NOT NULL,
    target      text        NOT NULL,
    details     jsonb       NOT NULL,
    actor       text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    position    bigint      NOT NULL,
    PRIMARY KEY (action_id)
);

CREATE TABLE shadow_comparisons (
    comparison_id  text        NOT NULL,
    model_id       text        NOT NULL,
    live_version   text        NOT NULL,
    shadow_version text        NOT NULL,
    window_start   timestamptz NOT NULL,
    window_end     timestamptz NOT NULL,
    samples        bigint      NOT NULL,
    agreements     bigint      NOT NULL,
    agreement_rate numeric     NOT NULL,
    recorded_by    text        NOT NULL,
    recorded_at    timestamptz NOT NULL,
    position       bigint      NOT NULL,
    PRIMARY KEY (comparison_id)
);

CREATE TABLE model_versions (
    model_id           text        NOT NULL,
    version            text        NOT NULL,
    training_data_hash text        NOT NULL,
    parameters_hash    text        NOT NULL,
    description        text        NOT NULL,
    registered_by      text        NOT NULL,
    registered_at      timestamptz NOT NULL,
    position           bigint      NOT NULL,
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

DO $timescale$
DECLARE
    tbl      text;
    key_cols text;
    time_col text;
    chunk    interval;
    streams  boolean;
BEGIN
    -- 0001 created the extension when the server has it.
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        -- Time-indexed tables become hypertables, partitioned by their time column. A
        -- unique index on a hypertable must contain that column, so the primary key
        -- becomes (key..., time) and the stream index (stream_id, time): one row per key
        -- and per stream is then guaranteed by the projection code (it inserts a key
        -- once, and its updates never change the time column), not by the database.
        -- The tables are empty here, so no data is migrated.
        FOR tbl, key_cols, time_col, chunk, streams IN
            SELECT * FROM (VALUES
                ('transactions',      'execution_id',    'trading_time',  INTERVAL '1 day', true),
                ('orders',            'client_order_id', 'placed_at',     INTERVAL '1 day', true),
                ('trade_decisions',   'decision_id',     'decided_at',    INTERVAL '1 day', false),
                ('market_data_usage', 'usage_id',        'used_at',       INTERVAL '1 day', false),
                ('risk_calculations', 'calculation_id',  'calculated_at', INTERVAL '1 day', false),
                ('compliance_checks', 'check_id',        'performed_at',  INTERVAL '1 day', false),
                ('user_actions',      'action_id',       'occurred_at',   INTERVAL '1 day', false),
                ('dora_changes',      'change_ticket',   'started_at',    INTERVAL '30 days', true)
            ) AS hypertables (t, k, c, i, s)
        LOOP
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', tbl, tbl || '_pkey');
            EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (%I, %I)', tbl, key_cols, time_col);
            IF streams THEN
                EXECUTE format('DROP INDEX %I', tbl || '_stream_id');
                EXECUTE format('CREATE UNIQUE INDEX %I ON %I (stream_id, %I)',
                               tbl || '_stream_id', tbl, time_col);
            END IF;
            PERFORM create_hypertable(tbl::regclass, by_range(time_col, chunk));
        END LOOP;

        -- Continuous aggregates, real-time (materialized_only = false): a query sees the
        -- materialized buckets plus, computed on the fly, every row past the last
        -- materialized bucket. Only counts and sums are materialized (every TimescaleDB
        -- version accepts them in a continuous aggregate); ratios and rounding are done
        -- in a plain view on top. time_bucket with no time zone buckets in UTC, as
        -- date_bin does on the plain path.
        EXECUTE $cagg$
            CREATE MATERIALIZED VIEW compliance_failures_hourly
            WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT time_bucket(INTERVAL '1 hour', performed_at) AS hour,
                   control,
                   count(*) AS checks,
                   count(CASE WHEN NOT passed THEN 1 END) AS failures
            FROM compliance_checks
            GROUP BY hour, control
            WITH NO DATA
        $cagg$;

        EXECUTE $cagg$
            CREATE MATERIALIZED VIEW dora_daily
            WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT service,
                   time_bucket(INTERVAL '1 day', started_at) AS day,
                   count(*) AS deployments,
                   sum(lead_time_seconds) AS lead_time_sum,
                   count(lead_time_seconds) AS lead_time_count,
                   count(CASE WHEN failed THEN 1 END) AS failures,
                   sum(CASE WHEN failed THEN time_to_restore_seconds END) AS restore_sum,
                   count(CASE WHEN failed THEN time_to_restore_seconds END) AS restore_count
            FROM dora_changes
            GROUP BY service, day
            WITH NO DATA
        $cagg$;

        -- avg(x) is sum(x) / count(x) (the same numeric division), so these equal the
        -- plain path's round(avg(...)) to the digit.
        EXECUTE $view$
            CREATE VIEW dora_metrics AS
            SELECT service,
                   day,
                   deployments,
                   round(lead_time_sum / nullif(lead_time_count, 0), 3) AS lead_time_seconds,
                   round(failures::numeric / deployments, 4) AS change_failure_rate,
                   round(restore_sum / nullif(restore_count, 0), 3) AS time_to_restore_seconds
            FROM dora_daily
        $view$;

        -- Refresh policies. start_offset NULL: the window reaches back to the oldest row,
        -- because a projection catching up on an old ledger, or `projections rebuild
        -- --replace`, writes rows at any time; with a bounded start, buckets older than it
        -- would never be materialized (and, being behind the watermark, not computed on
        -- the fly either). A refresh only recomputes buckets whose rows changed since the
        -- last one (TimescaleDB logs the invalidations), so this stays cheap. Rows
        -- inserted, updated or deleted in buckets already materialized (a failed change
        -- restored, a rebuild) are seen once the next scheduled refresh has run.
        -- end_offset leaves the open bucket to real-time aggregation.
        PERFORM add_continuous_aggregate_policy('compliance_failures_hourly',
            start_offset => NULL,
            end_offset => INTERVAL '1 hour',
            schedule_interval => INTERVAL '15 minutes');
        PERFORM add_continuous_aggregate_policy('dora_daily',
            start_offset => NULL,
            end_offset => INTERVAL '1 day',
            schedule_interval => INTERVAL '1 hour');

        EXECUTE 'REVOKE ALL ON dora_daily FROM PUBLIC';
        EXECUTE 'GRANT SELECT ON dora_daily TO regledger_writer';
    ELSE
        CREATE VIEW compliance_failures_hourly AS
        SELECT date_bin(INTERVAL '1 hour', performed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')
                   AS hour,
               control,
               count(*) AS checks,
               count(*) FILTER (WHERE NOT passed) AS failures
        FROM compliance_checks
        GROUP BY 1, 2;

        CREATE VIEW dora_metrics AS
        SELECT service,
               date_bin(INTERVAL '1 day', started_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')
                   AS day,
               count(*) AS deployments,
               round(avg(lead_time_seconds), 3) AS lead_time_seconds,
               round(count(*) FILTER (WHERE failed)::numeric / count(*), 4)
                   AS change_failure_rate,
               round(avg(time_to_restore_seconds) FILTER (WHERE failed), 3)
                   AS time_to_restore_seconds
        FROM dora_changes
        GROUP BY 1, 2;
    END IF;
END
$timescale$;

REVOKE ALL ON transactions, orders, trade_decisions, market_data_usage, risk_calculations,
    compliance_checks, deployments, rollbacks, dora_requests, dora_changes, user_actions,
    shadow_comparisons, model_versions, compliance_failures_hourly, dora_metrics
    FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON transactions, orders, trade_decisions,
    market_data_usage, risk_calculations, compliance_checks, deployments, rollbacks,
    dora_requests, dora_changes, user_actions, shadow_comparisons, model_versions
    TO regledger_writer;
GRANT SELECT ON compliance_failures_hourly, dora_metrics TO regledger_writer;
