-- What the stream processors write beside the ledger.
--
-- ledger_sources: the source event id of every event appended with one (ingestion from
--   `audit.*`), and the position of its first event. The ledger's append writes it in the
--   same transaction as the events, so the primary key makes a source event id appear at
--   most once in the ledger: a redelivered message can never add a second event. It is an
--   index, not evidence: every id is also in its event's payload (`source_event_id`).
-- slo_breaches: the projection of domain.reliability:SloBreach.Recorded
--   (projections/tables.py is the column spec, as for 0007).
-- slo_windows: per (service, endpoint, minute) request counts and latency bins, written by
--   the SLO worker from `telemetry.requests` (endpoint '*' is the whole service). Its
--   position per partition of the topic is a ledger_tracking row,
--   'slo:telemetry.requests:<partition>', advanced in the same transaction as the rows,
--   so a redelivered sample is never counted twice. `minute` is bucket_start as text
--   (the key every backend sorts alike).

CREATE TABLE ledger_sources (
    source_event_id text   NOT NULL PRIMARY KEY,
    position        bigint NOT NULL
);

CREATE TABLE slo_breaches (
    breach_id              text        NOT NULL,
    slo                    text        NOT NULL,
    service                text        NOT NULL,
    severity               text        NOT NULL CHECK (severity IN ('page', 'ticket')),
    rule                   text        NOT NULL,
    long_window_minutes    bigint      NOT NULL,
    short_window_minutes   bigint      NOT NULL,
    burn_rate_long         numeric     NOT NULL,
    burn_rate_short        numeric     NOT NULL,
    threshold              numeric     NOT NULL,
    sli_long               numeric     NOT NULL,
    sli_short              numeric     NOT NULL,
    window_end             timestamptz NOT NULL,
    error_budget_remaining numeric     NOT NULL,
    recorded_by            text        NOT NULL,
    recorded_at            timestamptz NOT NULL,
    position               bigint      NOT NULL,
    PRIMARY KEY (breach_id)
);
CREATE INDEX slo_breaches_service ON slo_breaches (service, window_end);

CREATE TABLE slo_windows (
    service      text        NOT NULL,
    endpoint     text        NOT NULL,
    minute       text        NOT NULL,
    bucket_start timestamptz NOT NULL,
    total        bigint      NOT NULL,
    errors       bigint      NOT NULL,
    slo_good     jsonb       NOT NULL,
    latency_bins jsonb       NOT NULL,
    p50_ms       numeric,
    p95_ms       numeric,
    p99_ms       numeric,
    PRIMARY KEY (service, endpoint, minute)
);
CREATE INDEX slo_windows_bucket_start ON slo_windows (bucket_start);

DO $timescale$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        -- A hypertable's unique index must hold its time column (see 0007); one row per
        -- (service, endpoint, minute) is kept by the worker, which derives bucket_start
        -- from minute.
        ALTER TABLE slo_windows DROP CONSTRAINT slo_windows_pkey;
        ALTER TABLE slo_windows ADD PRIMARY KEY (service, endpoint, minute, bucket_start);
        PERFORM create_hypertable('slo_windows'::regclass, by_range('bucket_start', INTERVAL '1 day'));
        ALTER TABLE slo_breaches DROP CONSTRAINT slo_breaches_pkey;
        ALTER TABLE slo_breaches ADD PRIMARY KEY (breach_id, window_end);
        PERFORM create_hypertable('slo_breaches'::regclass, by_range('window_end', INTERVAL '30 days'));
    END IF;
END
$timescale$;

REVOKE ALL ON ledger_sources, slo_breaches, slo_windows FROM PUBLIC;
-- Like ledger_events: the writer may read and add sources, never change or remove them.
GRANT SELECT, INSERT ON ledger_sources TO regledger_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON slo_breaches, slo_windows TO regledger_writer;
