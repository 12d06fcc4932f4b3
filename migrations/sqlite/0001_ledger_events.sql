-- The hash-chained event log (embedded default). `recorded_at` holds microseconds
-- since the Unix epoch, UTC: SQLite has no timestamp type, and an integer is exact.

CREATE TABLE ledger_events (
    position           INTEGER PRIMARY KEY CHECK (position >= 0),
    originator_id      TEXT    NOT NULL CHECK (originator_id <> ''),
    originator_version INTEGER NOT NULL CHECK (originator_version >= 0),
    topic              TEXT    NOT NULL CHECK (topic <> ''),
    state              BLOB    NOT NULL,
    recorded_at        INTEGER NOT NULL,
    prev_hash          BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash               BLOB    NOT NULL CHECK (length(hash) = 32),
    UNIQUE (originator_id, originator_version)
);

CREATE INDEX ledger_events_recorded_at ON ledger_events (recorded_at);
