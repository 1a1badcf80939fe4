-- Mark a chunk's invoices in flight before the call, so that a crash leaves a trace to reconcile.
INSERT INTO xero_sync.invoice_export (invoice_id, tenant_id, status, run_id, chunk_no, attempts)
SELECT id, %(tenant_id)s, 'sending', %(run_id)s, %(chunk_no)s, 1
FROM unnest(%(invoice_ids)s::bigint[]) AS id
ON CONFLICT (invoice_id) DO UPDATE
SET status = 'sending', tenant_id = EXCLUDED.tenant_id, run_id = EXCLUDED.run_id, chunk_no = EXCLUDED.chunk_no,
    attempts = xero_sync.invoice_export.attempts + 1, updated_at = now()
WHERE xero_sync.invoice_export.status IN ('failed', 'reset', 'sending')
RETURNING invoice_id;
