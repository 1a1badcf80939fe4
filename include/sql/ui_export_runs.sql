-- The latest export runs (and mock exports), for the API Log's run filter.
SELECT r.run_id, r.kind, r.status, r.started_at, r.dag_id, r.airflow_run_id
FROM xero_sync.export_run r
ORDER BY r.run_id DESC
LIMIT %(limit)s;
