-- The export state of a chunk's invoices; updated_at of a 'sending' row is when an earlier attempt
-- claimed it (reconciliation looks from there).
SELECT ri.invoice_id, x.status, x.updated_at
FROM xero_sync.run_invoice ri
LEFT JOIN xero_sync.invoice_export x ON x.invoice_id = ri.invoice_id
WHERE ri.run_id = %(run_id)s AND ri.tenant_id = %(tenant_id)s AND ri.chunk_no = %(chunk_no)s
ORDER BY ri.invoice_id;
