-- Reset: the next export sends these, whatever their date. An exported one only when the status sync found it
-- gone from Xero (reset_targets): it forgets the Xero document, which is no longer there to adopt.
INSERT INTO {export_table} ({id_column}, tenant_id, status)
SELECT document_id, tenant_id, 'reset'
FROM unnest(%(document_ids)s::bigint[], %(tenant_ids)s::text[]) AS r(document_id, tenant_id)
ON CONFLICT ({id_column}) DO UPDATE SET
    status = 'reset', last_error = NULL, updated_at = now(),
    {xero_id_column} = CASE WHEN {export_table}.status = 'exported' THEN NULL ELSE {export_table}.{xero_id_column} END
WHERE {export_table}.status IN ('mock_exported', 'failed', 'reset', 'exported');
