INSERT INTO xero_sync.credit_note_export (credit_note_id, tenant_id, status)
SELECT credit_note_id, tenant_id, 'reset'
FROM unnest(%(credit_note_ids)s::bigint[], %(tenant_ids)s::text[]) AS r(credit_note_id, tenant_id)
ON CONFLICT (credit_note_id) DO UPDATE SET status = 'reset', last_error = NULL, updated_at = now()
WHERE xero_sync.credit_note_export.status IN ('mock_exported', 'failed', 'reset');
