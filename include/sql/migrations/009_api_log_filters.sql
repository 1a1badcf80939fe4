-- The API Log page (the Airflow UI) pages newest first, filtered by organisation or by run: keyset paging on
-- the id needs these on a log of millions of calls.
CREATE INDEX IF NOT EXISTS api_log_tenant_id ON xero_sync.api_log (tenant_id, id);
CREATE INDEX IF NOT EXISTS api_log_run_id ON xero_sync.api_log (run_id, id);
