-- The export runs xero_sync still records as running for an entity (an export or a preview): the page shows the
-- one Airflow is still running instead of starting another.
SELECT r.dag_id, r.airflow_run_id
FROM xero_sync.export_run r
JOIN xero_sync.run_entity e ON e.run_id = r.run_id
WHERE r.status = 'running' AND r.kind IN ('export', 'preview') AND e.billing_entity_id = %(billing_entity_id)s
ORDER BY r.run_id DESC
LIMIT 20;
