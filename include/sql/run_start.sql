-- One export_run per Airflow DAG run: a retried or cleared task finds the same row. A run that continues
-- another's backlog says which.
INSERT INTO xero_sync.export_run (kind, dag_id, airflow_run_id, params, continues_run_id)
VALUES (%(kind)s, %(dag_id)s, %(airflow_run_id)s, %(params)s, %(continues_run_id)s)
ON CONFLICT (dag_id, airflow_run_id) DO UPDATE SET params = EXCLUDED.params, status = 'running', finished_at = NULL
RETURNING run_id;
