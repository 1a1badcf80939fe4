-- Reset: the next export sends these, whatever their date. An exported one only when the status sync found it
-- gone from Xero (reset_targets): it forgets that Xero document, which is no longer there to adopt, and starts a
-- new export of it (first_claimed_at, last_sent_at: the new copy's calls are looked for from its own first claim,
-- and its Idempotency-Key differs from the gone copy's, which Xero would otherwise answer with the gone copy).
INSERT INTO {export_table} ({id_column}, tenant_id, status)
SELECT document_id, tenant_id, 'reset'
FROM unnest(%(document_ids)s::bigint[], %(tenant_ids)s::text[]) AS r(document_id, tenant_id)
ON CONFLICT ({id_column}) DO UPDATE SET
    status = 'reset', last_error = NULL, updated_at = now(),
    {xero_id_column} = CASE WHEN {export_table}.status = 'exported' THEN NULL ELSE {export_table}.{xero_id_column} END,
    first_claimed_at = CASE WHEN {export_table}.status = 'exported' THEN NULL ELSE {export_table}.first_claimed_at END,
    last_sent_at = CASE WHEN {export_table}.status = 'exported' THEN NULL ELSE {export_table}.last_sent_at END
WHERE {export_table}.status IN ('mock_exported', 'failed', 'reset', 'exported');
