-- History at go-live: every Sent document of one kind of the entity dated before the migration date
-- that the pipeline never handled is recorded as mock_exported (nothing is sent to Xero).
INSERT INTO {export_table} ({id_column}, tenant_id, status, run_id, updated_at)
SELECT d.document_id, e.xero_tenant_id, 'mock_exported', %(run_id)s, now()
FROM xero_sync.astute_document d
JOIN astute.billing_entity e ON e.id = d.billing_entity_id
WHERE d.kind = %(kind)s AND d.billing_entity_id = %(billing_entity_id)s AND d.status = 'Sent'
  AND d.document_date < %(migration_date)s
ON CONFLICT ({id_column}) DO NOTHING;
