-- Reset: the next export sends these, whatever their date.
INSERT INTO {export_table} ({id_column}, tenant_id, status)
SELECT document_id, tenant_id, 'reset'
FROM unnest(%(document_ids)s::bigint[], %(tenant_ids)s::text[]) AS r(document_id, tenant_id)
ON CONFLICT ({id_column}) DO UPDATE SET status = 'reset', last_error = NULL, updated_at = now()
WHERE {export_table}.status IN ('mock_exported', 'failed', 'reset');
