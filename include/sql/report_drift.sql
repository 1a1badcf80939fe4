-- Where Xero and Astute disagree for the entity's organisation (open drift), newest first.
SELECT d.drift, d.kind, d.astute_id, d.number, d.detail, d.what_to_do, d.found_at
FROM xero_sync.drift d
JOIN astute.billing_entity e ON e.xero_tenant_id = d.tenant_id
WHERE e.id = %(billing_entity_id)s AND d.resolved_at IS NULL
  AND (d.astute_id IS NULL
       OR (d.kind = 'invoice' AND d.astute_id IN (SELECT id FROM astute.invoice WHERE billing_entity_id = e.id))
       OR (d.kind = 'credit_note' AND d.astute_id IN (SELECT id FROM astute.credit_note WHERE billing_entity_id = e.id)))
ORDER BY d.found_at DESC, d.id DESC;
