-- What the stream processors write beside the ledger (see postgres/0008_streams.sql for
-- what each table means).

CREATE TABLE ledger_sources (
    source_event_id TEXT    NOT NULL PRIMARY KEY,
    position        INTEGER NOT NULL
);

CREATE TRIGGER ledger_sources_no_update BEFORE UPDATE ON ledger_sources
BEGIN
    SELECT RAISE(ABORT, 'ledger_sources is append-only: a source event id is never changed');
END;

CREATE TRIGGER ledger_sources_no_delete BEFORE DELETE ON ledger_sources
BEGIN
    SELECT RAISE(ABORT, 'ledger_sources is append-only: a source event id is never removed');
END;

CREATE TABLE slo_breaches (
    breach_id              TEXT    NOT NULL,
    slo                    TEXT    NOT NULL,
    service                TEXT    NOT NULL,
    severity               TEXT    NOT NULL CHECK (severity IN ('page', 'ticket')),
    rule                   TEXT    NOT NULL,
    long_window_minutes    INTEGER NOT NULL,
    short_window_minutes   INTEGER NOT NULL,
    burn_rate_long         TEXT    NOT NULL,
    burn_rate_short        TEXT    NOT NULL,
    threshold              TEXT    NOT NULL,
    sli_long               TEXT    NOT NULL,
    sli_short              TEXT    NOT NULL,
    window_end             TEXT    NOT NULL,
    error_budget_remaining TEXT    NOT NULL,
    recorded_by            TEXT    NOT NULL,
    recorded_at            TEXT    NOT NULL,
    position               INTEGER NOT NULL,
    PRIMARY KEY (breach_id)
);
CREATE INDEX slo_breaches_service ON slo_breaches (service, window_end);

CREATE TABLE slo_windows (
    service      TEXT    NOT NULL,
    endpoint     TEXT    NOT NULL,
    minute       TEXT    NOT NULL,
    bucket_start TEXT    NOT NULL,
    total        INTEGER NOT NULL,
    errors       INTEGER NOT NULL,
    slo_good     TEXT    NOT NULL,
    latency_bins TEXT    NOT NULL,
    p50_ms       TEXT,
    p95_ms       TEXT,
    p99_ms       TEXT,
    PRIMARY KEY (service, endpoint, minute)
);
CREATE INDEX slo_windows_bucket_start ON slo_windows (bucket_start);
