-- Signed checkpoints the ledger has issued (C2SP tlog-checkpoint in a signed note).
-- Each was proven consistent with the one before it; append-only like the log.

CREATE TABLE ledger_checkpoints (
    id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    size      bigint      NOT NULL CHECK (size >= 0),
    root      bytea       NOT NULL CHECK (octet_length(root) = 32),
    note      text        NOT NULL,
    signed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX ledger_checkpoints_size ON ledger_checkpoints (size);

CREATE TRIGGER ledger_checkpoints_no_update
    BEFORE UPDATE ON ledger_checkpoints
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();

CREATE TRIGGER ledger_checkpoints_no_delete
    BEFORE DELETE ON ledger_checkpoints
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();

CREATE TRIGGER ledger_checkpoints_no_truncate
    BEFORE TRUNCATE ON ledger_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();

REVOKE ALL ON ledger_checkpoints FROM PUBLIC;
GRANT SELECT, INSERT ON ledger_checkpoints TO regledger_writer;
