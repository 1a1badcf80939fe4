-- Customers of a run's ready documents in one organisation that have no Contact link there yet.
SELECT DISTINCT ri.tenant_id, c.id, c.name
FROM xero_sync.run_document ri
JOIN astute.customer c ON c.id = ri.customer_id
LEFT JOIN xero_sync.contact_link cl ON cl.customer_id = ri.customer_id AND cl.tenant_id = ri.tenant_id
WHERE ri.run_id = %(run_id)s AND ri.tenant_id = %(tenant_id)s AND ri.stage = 'ready' AND cl.customer_id IS NULL
ORDER BY ri.tenant_id, c.id;
