SELECT DISTINCT ON (tenant_id) tenant_id, entity_name
FROM xero_sync.run_entity
WHERE run_id = %(run_id)s AND decision = 'export'
ORDER BY tenant_id, billing_entity_id;
