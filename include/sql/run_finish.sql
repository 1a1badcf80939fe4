UPDATE xero_sync.export_run
SET status = %(status)s,
    finished_at = now(),
    invoices_exported = %(invoices_exported)s,
    invoices_failed = %(invoices_failed)s,
    credit_notes_exported = %(credit_notes_exported)s,
    credit_notes_failed = %(credit_notes_failed)s,
    allocations_made = %(allocations_made)s,
    api_calls = (SELECT count(*) FROM xero_sync.api_log WHERE run_id = %(run_id)s)
WHERE run_id = %(run_id)s;
