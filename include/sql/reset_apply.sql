-- Reset: the next export sends these, whatever their date.
INSERT INTO xero_sync.invoice_export (invoice_id, tenant_id, status)
SELECT invoice_id, tenant_id, 'reset'
FROM unnest(%(invoice_ids)s::bigint[], %(tenant_ids)s::text[]) AS r(invoice_id, tenant_id)
ON CONFLICT (invoice_id) DO UPDATE SET status = 'reset', last_error = NULL, updated_at = now()
WHERE xero_sync.invoice_export.status IN ('mock_exported', 'failed', 'reset');
