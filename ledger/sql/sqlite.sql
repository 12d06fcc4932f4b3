-- Queries of the SQLite chain store. Parameters are :name (sqlite3).

-- name: head
SELECT position, hash, recorded_at FROM ledger_events ORDER BY position DESC LIMIT 1

-- name: insert_event
INSERT INTO ledger_events (position, originator_id, originator_version, topic, state,
                           recorded_at, prev_hash, hash)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)

-- name: select_events_asc
SELECT originator_id, originator_version, topic, state FROM ledger_events
WHERE originator_id = :originator_id
  AND (:gt IS NULL OR originator_version > :gt)
  AND (:lte IS NULL OR originator_version <= :lte)
ORDER BY originator_version ASC
LIMIT coalesce(:limit, -1)

-- name: select_events_desc
SELECT originator_id, originator_version, topic, state FROM ledger_events
WHERE originator_id = :originator_id
  AND (:gt IS NULL OR originator_version > :gt)
  AND (:lte IS NULL OR originator_version <= :lte)
ORDER BY originator_version DESC
LIMIT coalesce(:limit, -1)

-- name: select_records
SELECT position, originator_id, originator_version, topic, state, recorded_at, prev_hash, hash
FROM ledger_events
WHERE position >= :first AND (:last IS NULL OR position <= :last)
ORDER BY position
LIMIT :limit

-- name: select_records_by_topic
-- The topic filter as a JSON array: sqlite3 cannot bind a list.
SELECT position, originator_id, originator_version, topic, state, recorded_at, prev_hash, hash
FROM ledger_events
WHERE position >= :first AND (:last IS NULL OR position <= :last)
  AND topic IN (SELECT value FROM json_each(:topics))
ORDER BY position
LIMIT :limit

-- name: records_of
SELECT position, originator_id, originator_version, topic, state, recorded_at, prev_hash, hash
FROM ledger_events WHERE originator_id = :originator_id ORDER BY originator_version

-- name: event_hashes
SELECT hash FROM ledger_events WHERE position >= :start AND position < :end ORDER BY position

-- name: tree_nodes
SELECT hash FROM ledger_tree_nodes WHERE level = :level AND idx >= :start AND idx < :end
ORDER BY idx

-- name: tree_node_count
SELECT count(*) FROM ledger_tree_nodes WHERE level = 8

-- name: insert_tree_node
INSERT INTO ledger_tree_nodes (level, idx, hash) VALUES (?, ?, ?)

-- name: insert_checkpoint
INSERT INTO ledger_checkpoints (size, root, note) VALUES (:size, :root, :note)

-- name: latest_checkpoint
SELECT note FROM ledger_checkpoints ORDER BY size DESC, id DESC LIMIT 1

-- name: max_position
SELECT max(position) FROM ledger_events

-- name: record_at
SELECT position, originator_id, originator_version, topic, state, recorded_at, prev_hash, hash
FROM ledger_events WHERE position = :position

-- name: position_of_prev_hash
SELECT position FROM ledger_events WHERE prev_hash = :hash ORDER BY position LIMIT 1

-- name: position_of_hash
SELECT position FROM ledger_events WHERE hash = :hash ORDER BY position LIMIT 1

-- name: records_range
SELECT position, originator_id, originator_version, topic, state, recorded_at, prev_hash, hash
FROM ledger_events WHERE position >= :first AND position <= :last ORDER BY position

-- name: insert_tracking
INSERT INTO ledger_tracking (application_name, notification_id)
VALUES (:application_name, :notification_id)
ON CONFLICT (application_name) DO UPDATE
SET notification_id = excluded.notification_id
WHERE ledger_tracking.notification_id < excluded.notification_id
RETURNING notification_id

-- name: max_tracking_id
SELECT notification_id FROM ledger_tracking WHERE application_name = :application_name

-- name: migrations_table
CREATE TABLE IF NOT EXISTS regledger_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    sha256     TEXT    NOT NULL,
    applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)

-- name: migrations_table_exists
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'regledger_migrations'

-- name: applied_migrations
SELECT version, name, sha256, applied_at FROM regledger_migrations ORDER BY version

-- name: record_migration
INSERT INTO regledger_migrations (version, name, sha256) VALUES (:version, :name, :sha256)

-- name: view_tracked
-- A projection's tracking row: the notification id it applied (position + 1; 0 after a reset).
SELECT notification_id FROM ledger_tracking WHERE application_name = :name

-- name: view_advance
-- Compare and set: only a projection still at :old moves (writers are serialized
-- by BEGIN IMMEDIATE, so a second runner finds it moved).
INSERT INTO ledger_tracking (application_name, notification_id)
VALUES (:name, :new)
ON CONFLICT (application_name) DO UPDATE
SET notification_id = excluded.notification_id
WHERE ledger_tracking.notification_id = :old
RETURNING 1

-- name: view_reset
UPDATE ledger_tracking SET notification_id = 0 WHERE application_name = :name
RETURNING 1

-- name: view_table_sql
SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = :name

-- name: insert_source
INSERT INTO ledger_sources (source_event_id, position) VALUES (?, ?)

-- name: source_positions
SELECT source_event_id, position FROM ledger_sources
WHERE source_event_id IN (SELECT value FROM json_each(?))
