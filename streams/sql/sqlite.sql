-- Read queries of streams/ on SQLite. {columns} stands for the table's columns.

-- name: slo_windows_since
SELECT {columns} FROM slo_windows
WHERE endpoint <> :all AND bucket_start >= :since
ORDER BY bucket_start

-- name: slo_newest_window
SELECT {columns} FROM slo_windows
WHERE endpoint <> :all
ORDER BY bucket_start DESC LIMIT 1

-- name: indicator_values_from
SELECT {columns} FROM indicator_values
WHERE bar_time >= :since

-- name: indicator_values_after
SELECT {columns} FROM indicator_values
WHERE symbol = :symbol AND timeframe = :timeframe AND bar_key > :after AND bar_key >= :since
ORDER BY bar_key

-- name: indicator_values_by_hash
SELECT {columns} FROM indicator_values
WHERE snapshot_hash = :hash
ORDER BY symbol, timeframe, bar_key
