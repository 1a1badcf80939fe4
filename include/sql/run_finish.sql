UPDATE xero_sync.export_run
SET status = %(status)s,
    finished_at = now(),
    invoices_exported = %(exported)s,
    invoices_failed = %(failed)s,
    api_calls = (SELECT count(*) FROM xero_sync.api_log WHERE run_id = %(run_id)s)
WHERE run_id = %(run_id)s;
