UPDATE xero_sync.export_chunk SET status = %(status)s
WHERE run_id = %(run_id)s AND tenant_id = %(tenant_id)s AND chunk_no = %(chunk_no)s;
