-- Signed checkpoints the ledger has issued (see the PostgreSQL migration).

CREATE TABLE ledger_checkpoints (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    size      INTEGER NOT NULL CHECK (size >= 0),
    root      BLOB    NOT NULL CHECK (length(root) = 32),
    note      TEXT    NOT NULL,
    signed_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX ledger_checkpoints_size ON ledger_checkpoints (size);

CREATE TRIGGER ledger_checkpoints_no_update BEFORE UPDATE ON ledger_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'ledger_checkpoints is append-only: UPDATE rejected');
END;

CREATE TRIGGER ledger_checkpoints_no_delete BEFORE DELETE ON ledger_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'ledger_checkpoints is append-only: DELETE rejected');
END;
