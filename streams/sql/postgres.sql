-- Read queries of streams/ on PostgreSQL. {columns} stands for the table's columns.

-- name: slo_windows_since
-- The endpoint windows (not the service-wide '*') from a time on: what restores the
-- burn-rate evaluator.
SELECT {columns} FROM slo_windows
WHERE endpoint <> %(all)s AND bucket_start >= %(since)s
ORDER BY bucket_start

-- name: slo_newest_window
SELECT {columns} FROM slo_windows
WHERE endpoint <> %(all)s
ORDER BY bucket_start DESC LIMIT 1
