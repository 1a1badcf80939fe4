-- Customers of a run's ready documents in one organisation already linked to a Contact there, with their
-- name in Astute now and the Contact's name when it was linked or last renamed.
SELECT DISTINCT ri.tenant_id, cl.customer_id, cl.xero_contact_id::text, cl.xero_contact_name, c.name
FROM xero_sync.run_document ri
JOIN xero_sync.contact_link cl ON cl.customer_id = ri.customer_id AND cl.tenant_id = ri.tenant_id
JOIN astute.customer c ON c.id = ri.customer_id
WHERE ri.run_id = %(run_id)s AND ri.tenant_id = %(tenant_id)s AND ri.stage = 'ready'
ORDER BY ri.tenant_id, cl.customer_id;
