-- The hash-chained event log. One row per event; `position` is gapless from 0.
-- On TimescaleDB the table is a hypertable partitioned by `position` (a unique index
-- on a hypertable must contain its partitioning column, so per-aggregate version
-- uniqueness is then checked by the recorder under the append lock, against the
-- non-unique index below). On plain PostgreSQL a unique constraint enforces it.

CREATE TABLE ledger_events (
    position           bigint      NOT NULL CHECK (position >= 0),
    originator_id      text        NOT NULL CHECK (originator_id <> ''),
    originator_version bigint      NOT NULL CHECK (originator_version >= 0),
    topic              text        NOT NULL CHECK (topic <> ''),
    state              bytea       NOT NULL,
    recorded_at        timestamptz NOT NULL,
    prev_hash          bytea       NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash               bytea       NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (position)
);

COMMENT ON TABLE ledger_events IS
    'regledger hash-chained audit log; append-only; format in docs/FORMAT.md';

CREATE INDEX ledger_events_recorded_at ON ledger_events (recorded_at);

DO $timescale$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        PERFORM create_hypertable('ledger_events', by_range('position', 1000000));
        CREATE INDEX ledger_events_stream ON ledger_events (originator_id, originator_version);
        -- Compression needs "now" for an integer dimension: the next position.
        CREATE FUNCTION ledger_events_next_position() RETURNS bigint
            LANGUAGE sql STABLE AS
            'SELECT coalesce(max(position) + 1, 0) FROM ledger_events';
        PERFORM set_integer_now_func('ledger_events', 'ledger_events_next_position');
        ALTER TABLE ledger_events SET (
            timescaledb.compress,
            timescaledb.compress_orderby = 'position'
        );
        -- Chunks 10 million positions behind the head are compressed.
        PERFORM add_compression_policy('ledger_events', BIGINT '10000000');
    ELSE
        ALTER TABLE ledger_events
            ADD CONSTRAINT ledger_events_stream UNIQUE (originator_id, originator_version);
    END IF;
END
$timescale$;
