-- Positions of the applications and projections that process the ledger.

CREATE TABLE ledger_tracking (
    application_name TEXT    NOT NULL PRIMARY KEY,
    notification_id  INTEGER NOT NULL
);
