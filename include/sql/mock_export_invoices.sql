-- History at go-live: every Sent invoice of the entity dated before the migration date that the
-- pipeline never handled is recorded as mock_exported (nothing is sent to Xero).
INSERT INTO xero_sync.invoice_export (invoice_id, tenant_id, status, run_id, updated_at)
SELECT i.id, e.xero_tenant_id, 'mock_exported', %(run_id)s, now()
FROM astute.invoice i
JOIN astute.billing_entity e ON e.id = i.billing_entity_id
WHERE i.billing_entity_id = %(billing_entity_id)s AND i.status = 'Sent' AND i.invoice_date < %(migration_date)s
ON CONFLICT (invoice_id) DO NOTHING;
