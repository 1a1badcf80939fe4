-- When the entity's organisation was last read back from Xero.
SELECT s.last_success_at, s.last_error
FROM xero_sync.status_sync s JOIN astute.billing_entity e ON e.xero_tenant_id = s.tenant_id
WHERE e.id = %(billing_entity_id)s;
