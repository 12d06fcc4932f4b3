-- Positions of the applications and projections that process the ledger
-- (eventsourcing's single-row tracking: one row per application name).

CREATE TABLE ledger_tracking (
    application_name text   NOT NULL PRIMARY KEY,
    notification_id  bigint NOT NULL
);
