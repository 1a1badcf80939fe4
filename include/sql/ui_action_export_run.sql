-- The xero_sync run an Airflow run of the export recorded (none until its first task ran), for the page's banner.
SELECT r.run_id, r.kind, r.status, r.started_at, r.finished_at
FROM xero_sync.export_run r
WHERE r.dag_id = %(dag_id)s AND r.airflow_run_id = %(airflow_run_id)s
ORDER BY r.run_id DESC
LIMIT 1;
