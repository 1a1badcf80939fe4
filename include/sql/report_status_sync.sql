-- When the entity's organisation was last read back from Xero, and last read in full (every document compared).
SELECT s.last_success_at, s.last_error, s.last_full_at
FROM xero_sync.status_sync s JOIN astute.billing_entity e ON e.xero_tenant_id = s.tenant_id
WHERE e.id = %(billing_entity_id)s;
