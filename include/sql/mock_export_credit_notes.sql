INSERT INTO xero_sync.credit_note_export (credit_note_id, tenant_id, status, run_id, updated_at)
SELECT c.id, e.xero_tenant_id, 'mock_exported', %(run_id)s, now()
FROM astute.credit_note c
JOIN astute.billing_entity e ON e.id = c.billing_entity_id
WHERE c.billing_entity_id = %(billing_entity_id)s AND c.status = 'Sent' AND c.credit_date < %(migration_date)s
ON CONFLICT (credit_note_id) DO NOTHING;
