-- The Xero organisations (tenant ids) the billing entities export to, with the entities' names.
SELECT e.xero_tenant_id, string_agg(e.name, ', ' ORDER BY e.id)
FROM astute.billing_entity e
WHERE e.xero_tenant_id IS NOT NULL
GROUP BY e.xero_tenant_id
ORDER BY min(e.id);
