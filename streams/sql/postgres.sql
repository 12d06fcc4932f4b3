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

-- name: indicator_values_from
-- The snapshots of bars from a time on: which bars of a batch are already stored.
SELECT {columns} FROM indicator_values
WHERE bar_time >= %(since)s

-- name: indicator_values_after
-- One series' snapshots after a bar (and from a day's start on): what to publish again.
SELECT {columns} FROM indicator_values
WHERE symbol = %(symbol)s AND timeframe = %(timeframe)s
  AND bar_key > %(after)s AND bar_key >= %(since)s
ORDER BY bar_key

-- name: indicator_values_by_hash
SELECT {columns} FROM indicator_values
WHERE snapshot_hash = %(hash)s
ORDER BY symbol, timeframe, bar_key
