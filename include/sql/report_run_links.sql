-- The Airflow DAG run behind each export run (the report links every run to it in the Airflow UI).
SELECT r.run_id, r.dag_id, r.airflow_run_id
FROM xero_sync.export_run r
WHERE r.run_id = ANY (%(run_ids)s::bigint[]);
