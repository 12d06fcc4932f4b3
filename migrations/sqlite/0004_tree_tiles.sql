-- Stored Merkle tree state: nodes at levels 8, 16, 24, ... (see the PostgreSQL migration).

CREATE TABLE ledger_tree_nodes (
    level INTEGER NOT NULL CHECK (level > 0 AND level % 8 = 0),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    hash  BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

CREATE TRIGGER ledger_tree_nodes_no_update BEFORE UPDATE ON ledger_tree_nodes
BEGIN
    SELECT RAISE(ABORT, 'ledger_tree_nodes is append-only: UPDATE rejected');
END;

CREATE TRIGGER ledger_tree_nodes_no_delete BEFORE DELETE ON ledger_tree_nodes
BEGIN
    SELECT RAISE(ABORT, 'ledger_tree_nodes is append-only: DELETE rejected');
END;
