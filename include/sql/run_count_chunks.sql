UPDATE xero_sync.export_run
SET chunks_planned = %(chunks)s,
    documents_deferred = (SELECT count(*) FROM xero_sync.run_document WHERE run_id = %(run_id)s AND stage = 'deferred')
WHERE run_id = %(run_id)s;
