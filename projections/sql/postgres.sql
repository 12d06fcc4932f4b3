-- Read queries of projections/ on PostgreSQL. {columns} stands for the table's columns.

-- name: decision
SELECT {columns} FROM trade_decisions WHERE decision_id = %(id)s

-- name: order
SELECT {columns} FROM orders WHERE client_order_id = %(id)s

-- name: execution
SELECT {columns} FROM transactions WHERE execution_id = %(id)s

-- name: orders_of_decision
SELECT {columns} FROM orders WHERE decision_id = %(id)s

-- name: market_data_of_hash
SELECT {columns} FROM market_data_usage WHERE snapshot_hash = %(hash)s

-- name: checks_of_orders
SELECT {columns} FROM compliance_checks WHERE client_order_id = ANY(%(ids)s)

-- name: executions_of_orders
SELECT {columns} FROM transactions WHERE client_order_id = ANY(%(ids)s)

-- name: risk_in_force
-- The latest figure of each portfolio and metric recorded before a position.
SELECT DISTINCT ON (portfolio, metric) {columns}
FROM risk_calculations
WHERE position < %(before)s
ORDER BY portfolio, metric, position DESC

-- name: failed_checks
SELECT {columns} FROM compliance_checks
WHERE NOT passed
  AND (%(control)s::text IS NULL OR control = %(control)s::text)
  AND (%(since)s::timestamptz IS NULL OR performed_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR performed_at < %(until)s::timestamptz)
ORDER BY performed_at, check_id
