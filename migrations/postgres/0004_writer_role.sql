-- The role the service writes with: it may read and append, never change or remove.
-- Roles are cluster-wide, so it is created once and granted per database.
-- Give it a password (ALTER ROLE regledger_writer PASSWORD '...') where auth needs one.

DO $role$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'regledger_writer') THEN
        CREATE ROLE regledger_writer LOGIN;
    END IF;
END
$role$;

REVOKE ALL ON ledger_events FROM PUBLIC;
REVOKE ALL ON ledger_events FROM regledger_writer;
GRANT SELECT, INSERT ON ledger_events TO regledger_writer;
GRANT SELECT, INSERT, UPDATE ON ledger_tracking TO regledger_writer;
GRANT SELECT ON regledger_migrations TO regledger_writer;
