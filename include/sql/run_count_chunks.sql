UPDATE xero_sync.export_run
SET chunks_planned = %(chunks)s,
    invoices_deferred = (SELECT count(*) FROM xero_sync.run_invoice WHERE run_id = %(run_id)s AND stage = 'deferred')
WHERE run_id = %(run_id)s;
