-- Append-only, enforced by the database: UPDATE, DELETE and TRUNCATE are rejected
-- for every role, the owner included. (A superuser can still disable triggers;
-- that is what `regledger verify` and signed checkpoints are for.)

CREATE FUNCTION ledger_reject_change() RETURNS trigger
    LANGUAGE plpgsql AS
$body$
BEGIN
    RAISE EXCEPTION 'ledger_events is append-only: % rejected', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'record a correcting event instead of changing a recorded one';
END
$body$;

CREATE TRIGGER ledger_events_no_update
    BEFORE UPDATE ON ledger_events
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();

CREATE TRIGGER ledger_events_no_delete
    BEFORE DELETE ON ledger_events
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();

CREATE TRIGGER ledger_events_no_truncate
    BEFORE TRUNCATE ON ledger_events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();
