-- Queries of the PostgreSQL chain store. Parameters are %(name)s (psycopg).

-- name: append_lock
-- Serializes appends (the chain has one head). Advisory, so the writer role, which
-- holds INSERT only and may not LOCK the table, can take it. Released at commit.
SELECT pg_advisory_xact_lock(7382021125453031729)

-- name: lock_timeout
-- Bounds the wait for the append lock (REGLEDGER_LOCK_TIMEOUT), for this transaction only.
SELECT set_config('lock_timeout', %(timeout)s, true)

-- name: head_and_clock
-- The chain head and the database clock, read after the append lock is held.
SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::int8 AS now_us,
       h.position, h.hash, h.recorded_at_us
FROM (SELECT 1) AS one
LEFT JOIN (
    SELECT position, hash, (extract(epoch FROM recorded_at) * 1000000)::int8 AS recorded_at_us
    FROM ledger_events ORDER BY position DESC LIMIT 1
) AS h ON true

-- name: head
SELECT position, hash, (extract(epoch FROM recorded_at) * 1000000)::int8 AS recorded_at_us
FROM ledger_events ORDER BY position DESC LIMIT 1

-- name: existing_versions
-- Only on TimescaleDB, where the hypertable cannot hold a unique (originator_id,
-- originator_version) index: the recorder checks under the append lock instead.
SELECT e.originator_id, e.originator_version
FROM ledger_events AS e
JOIN unnest(%(ids)s::text[], %(versions)s::int8[]) AS n(originator_id, originator_version)
  ON e.originator_id = n.originator_id AND e.originator_version = n.originator_version
LIMIT 1

-- name: copy_in
COPY ledger_events (position, originator_version, recorded_at, originator_id, topic, state,
                    prev_hash, hash)
FROM STDIN (FORMAT BINARY)

-- name: notify
NOTIFY regledger_events

-- name: listen
LISTEN regledger_events

-- name: select_events_asc
SELECT originator_id, originator_version, topic, state FROM ledger_events
WHERE originator_id = %(originator_id)s
  AND (%(gt)s::int8 IS NULL OR originator_version > %(gt)s::int8)
  AND (%(lte)s::int8 IS NULL OR originator_version <= %(lte)s::int8)
ORDER BY originator_version ASC
LIMIT %(limit)s

-- name: select_events_desc
SELECT originator_id, originator_version, topic, state FROM ledger_events
WHERE originator_id = %(originator_id)s
  AND (%(gt)s::int8 IS NULL OR originator_version > %(gt)s::int8)
  AND (%(lte)s::int8 IS NULL OR originator_version <= %(lte)s::int8)
ORDER BY originator_version DESC
LIMIT %(limit)s

-- name: select_records
SELECT position, originator_id, originator_version, topic, state,
       (extract(epoch FROM recorded_at) * 1000000)::int8, prev_hash, hash
FROM ledger_events
WHERE position >= %(first)s
  AND (%(last)s::int8 IS NULL OR position <= %(last)s::int8)
  AND (%(topics)s::text[] IS NULL OR topic = ANY(%(topics)s::text[]))
ORDER BY position
LIMIT %(limit)s

-- name: records_of
SELECT position, originator_id, originator_version, topic, state,
       (extract(epoch FROM recorded_at) * 1000000)::int8, prev_hash, hash
FROM ledger_events WHERE originator_id = %(originator_id)s ORDER BY originator_version

-- name: event_hashes
SELECT hash FROM ledger_events WHERE position >= %(start)s AND position < %(end)s
ORDER BY position

-- name: tree_nodes
SELECT hash FROM ledger_tree_nodes
WHERE level = %(level)s AND idx >= %(start)s AND idx < %(end)s ORDER BY idx

-- name: tree_node_count
SELECT count(*) FROM ledger_tree_nodes WHERE level = 8

-- name: open_block
-- Under the append lock: the hashes of the unfinished 256-event block at the head,
-- which the batch's first completed tree node needs (docs/FORMAT.md section 5).
-- A backward index scan of exactly those rows: a prepared plan stays an index scan
-- however the table grows (a range filter on a subquery was planned as a seq scan).
-- Returned as leaf hashes, SHA-256(0x00 || hash): the server hashes them beside our work.
SELECT sha256('\x00'::bytea || hash) FROM (
    SELECT position, hash FROM ledger_events ORDER BY position DESC
    LIMIT (SELECT (coalesce(max(position), -1) + 1) % 256 FROM ledger_events)
) AS open_block
ORDER BY position

-- name: insert_tree_nodes
INSERT INTO ledger_tree_nodes (level, idx, hash)
SELECT * FROM unnest(%(levels)s::int2[], %(idxs)s::int8[], %(hashes)s::bytea[])

-- name: insert_checkpoint
INSERT INTO ledger_checkpoints (size, root, note) VALUES (%(size)s, %(root)s, %(note)s)

-- name: latest_checkpoint
SELECT note FROM ledger_checkpoints ORDER BY size DESC, id DESC LIMIT 1

-- name: max_position
SELECT max(position) FROM ledger_events

-- name: record_at
SELECT position, originator_id, originator_version, topic, state,
       (extract(epoch FROM recorded_at) * 1000000)::int8, prev_hash, hash
FROM ledger_events WHERE position = %(position)s

-- name: position_of_prev_hash
SELECT position FROM ledger_events WHERE prev_hash = %(hash)s ORDER BY position LIMIT 1

-- name: position_of_hash
-- Only asked after a mismatch, to tell a moved row from an altered one.
SELECT position FROM ledger_events WHERE hash = %(hash)s ORDER BY position LIMIT 1

-- name: links_copy
-- Columns in the order of the canonical encoding, so each binary COPY row holds the
-- hashed message as one contiguous slice (docs/FORMAT.md, "Verifying from PostgreSQL").
COPY (
    SELECT position, originator_version,
           (extract(epoch FROM recorded_at) * 1000000)::int8,
           originator_id, topic, state, prev_hash, hash
    FROM ledger_events
    WHERE position >= %(first)s AND position <= %(last)s
    ORDER BY position
) TO STDOUT (FORMAT BINARY)

-- name: insert_tracking
INSERT INTO ledger_tracking (application_name, notification_id)
VALUES (%(application_name)s, %(notification_id)s)
ON CONFLICT (application_name) DO UPDATE
SET notification_id = excluded.notification_id
WHERE ledger_tracking.notification_id < excluded.notification_id
RETURNING notification_id

-- name: max_tracking_id
SELECT notification_id FROM ledger_tracking WHERE application_name = %(application_name)s

-- name: probe
-- Run once when a store opens: is TimescaleDB installed, and is the database UTF8?
SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'),
       pg_encoding_to_char(encoding)
FROM pg_database WHERE datname = current_database()

-- name: migrations_table
CREATE TABLE IF NOT EXISTS regledger_migrations (
    version    integer     NOT NULL PRIMARY KEY,
    name       text        NOT NULL,
    sha256     text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
)

-- name: migrations_table_exists
SELECT to_regclass('regledger_migrations') IS NOT NULL

-- name: migrations_lock
SELECT pg_advisory_xact_lock(7382021125453031730)

-- name: applied_migrations
SELECT version, name, sha256, applied_at FROM regledger_migrations ORDER BY version

-- name: migration_applied
SELECT 1 FROM regledger_migrations WHERE version = %(version)s

-- name: record_migration
INSERT INTO regledger_migrations (version, name, sha256)
VALUES (%(version)s, %(name)s, %(sha256)s)

-- name: view_tracked
-- A projection's tracking row: the notification id it applied (position + 1; 0 after a reset).
SELECT notification_id FROM ledger_tracking WHERE application_name = %(name)s

-- name: view_advance
-- Compare and set: only a projection still at %(old)s moves. The row stays locked
-- until the transaction ends, so a second runner waits here, then finds it moved.
INSERT INTO ledger_tracking (application_name, notification_id)
VALUES (%(name)s, %(new)s)
ON CONFLICT (application_name) DO UPDATE
SET notification_id = excluded.notification_id
WHERE ledger_tracking.notification_id = %(old)s
RETURNING 1

-- name: view_reset
UPDATE ledger_tracking SET notification_id = 0 WHERE application_name = %(name)s
RETURNING 1

-- name: view_schema
SELECT current_schema()

-- name: insert_sources
-- Inside the append's transaction: a source event id already recorded aborts the batch.
INSERT INTO ledger_sources (source_event_id, position)
SELECT * FROM unnest(%(ids)s::text[], %(positions)s::int8[])

-- name: source_positions
SELECT source_event_id, position FROM ledger_sources WHERE source_event_id = ANY(%(ids)s)
