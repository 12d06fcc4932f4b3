-- Read queries of projections/ on SQLite. {columns} stands for the table's columns;
-- lists are bound as JSON arrays, times as the stored ISO 8601 UTC text.

-- name: decision
SELECT {columns} FROM trade_decisions WHERE decision_id = :id

-- name: order
SELECT {columns} FROM orders WHERE client_order_id = :id

-- name: execution
SELECT {columns} FROM transactions WHERE execution_id = :id

-- name: orders_of_decision
SELECT {columns} FROM orders WHERE decision_id = :id

-- name: market_data_of_hash
SELECT {columns} FROM market_data_usage WHERE snapshot_hash = :hash

-- name: checks_of_orders
SELECT {columns} FROM compliance_checks
WHERE client_order_id IN (SELECT value FROM json_each(:ids))

-- name: executions_of_orders
SELECT {columns} FROM transactions
WHERE client_order_id IN (SELECT value FROM json_each(:ids))

-- name: risk_in_force
-- The latest figure of each portfolio and metric recorded before a position.
SELECT {columns} FROM risk_calculations AS r
WHERE position = (
    SELECT max(s.position) FROM risk_calculations AS s
    WHERE s.portfolio = r.portfolio AND s.metric = r.metric AND s.position < :before
)

-- name: failed_checks
SELECT {columns} FROM compliance_checks
WHERE passed = 0
  AND (:control IS NULL OR control = :control)
  AND (:since IS NULL OR performed_at >= :since)
  AND (:until IS NULL OR performed_at < :until)
ORDER BY performed_at, check_id
