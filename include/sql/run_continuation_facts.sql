-- What continue_backlog needs of a finished export run besides its backlog: whether it sent anything, and
-- the Airflow run it belongs to (the continuation's run id is derived from it).
SELECT invoices_exported + credit_notes_exported AS sent, airflow_run_id
FROM xero_sync.export_run
WHERE run_id = %(run_id)s;
