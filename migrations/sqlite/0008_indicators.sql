-- What the indicators worker writes (see postgres/0009_indicators.sql for the meaning).

CREATE TABLE indicator_values (
    symbol        TEXT NOT NULL,
    timeframe     TEXT NOT NULL,
    bar_key       TEXT NOT NULL,
    bar_time      TEXT NOT NULL,
    snapshot_hash TEXT NOT NULL,
    snapshot      TEXT NOT NULL,
    PRIMARY KEY (symbol, timeframe, bar_key)
);
CREATE INDEX indicator_values_hash ON indicator_values (snapshot_hash);
CREATE INDEX indicator_values_bar_time ON indicator_values (bar_time);

CREATE TRIGGER indicator_values_no_update BEFORE UPDATE ON indicator_values
BEGIN
    SELECT RAISE(ABORT, 'indicator_values is append-only: a snapshot is never changed');
END;
