-- Stored Merkle tree state (RFC 9162 over the event hashes; docs/FORMAT.md section 5).
-- Only levels 8, 16, 24, ... are stored: node (level, idx) is the root of the perfect
-- subtree over leaves [idx * 2^level, (idx + 1) * 2^level). Anything else is computed
-- from at most one 256-wide tile per level, so a root or a proof needs no rebuild.
-- Written in the append transaction, under the append lock; append-only like the log.

CREATE TABLE ledger_tree_nodes (
    level smallint NOT NULL CHECK (level > 0 AND level % 8 = 0),
    idx   bigint   NOT NULL CHECK (idx >= 0),
    hash  bytea    NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (level, idx)
);

CREATE TRIGGER ledger_tree_nodes_no_update
    BEFORE UPDATE ON ledger_tree_nodes
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();

CREATE TRIGGER ledger_tree_nodes_no_delete
    BEFORE DELETE ON ledger_tree_nodes
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();

CREATE TRIGGER ledger_tree_nodes_no_truncate
    BEFORE TRUNCATE ON ledger_tree_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();

REVOKE ALL ON ledger_tree_nodes FROM PUBLIC;
GRANT SELECT, INSERT ON ledger_tree_nodes TO regledger_writer;
