-- What the indicators worker writes: one row per closed bar of a symbol and timeframe,
-- holding the indicator snapshot of that bar as its canonical bytes (docs/FORMAT.md,
-- "Indicator snapshots") and their SHA-256, the lineage hash trade decisions record.
--
-- indicator_values: `bar_key` is bar_time as text (YYYY-MM-DDTHH:MM:SSZ, the key every
--   backend sorts alike). `snapshot` is kept byte for byte as hashed (text, not jsonb:
--   jsonb would reorder keys and rewrite numbers), so anyone can recompute the hash.
--   A redelivered bar writes nothing: its key is already there (the worker compares the
--   hashes and reports a difference).

CREATE TABLE indicator_values (
    symbol        text        NOT NULL,
    timeframe     text        NOT NULL,
    bar_key       text        NOT NULL,
    bar_time      timestamptz NOT NULL,
    snapshot_hash text        NOT NULL CHECK (snapshot_hash ~ '^[0-9a-f]{64}$'),
    snapshot      text        NOT NULL,
    PRIMARY KEY (symbol, timeframe, bar_key)
);
CREATE INDEX indicator_values_hash ON indicator_values (snapshot_hash);
CREATE INDEX indicator_values_bar_time ON indicator_values (bar_time);

-- A snapshot is ~4 KB of JSON, so PostgreSQL compresses it out of line: with lz4 an insert
-- costs about half what it does with the default pglz. A server built without lz4 keeps
-- pglz (the same bytes come back either way).
DO $lz4$
BEGIN
    ALTER TABLE indicator_values ALTER COLUMN snapshot SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    NULL;
END
$lz4$;

DO $timescale$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        -- A hypertable's unique index must hold its time column (see 0007): one row per
        -- (symbol, timeframe, bar_key) is kept by the worker, which derives bar_time
        -- from bar_key.
        ALTER TABLE indicator_values DROP CONSTRAINT indicator_values_pkey;
        ALTER TABLE indicator_values ADD PRIMARY KEY (symbol, timeframe, bar_key, bar_time);
        PERFORM create_hypertable('indicator_values'::regclass, by_range('bar_time', INTERVAL '1 day'));
    END IF;
END
$timescale$;

REVOKE ALL ON indicator_values FROM PUBLIC;
-- A snapshot, once written, is evidence a decision may cite: the writer adds, never changes.
GRANT SELECT, INSERT ON indicator_values TO regledger_writer;
