-- The organisations to read back: those of linked, live billing entities (optionally only some entities).
SELECT e.xero_tenant_id, string_agg(e.name || ' (billing entity ' || e.id || ')', ', ' ORDER BY e.id)
FROM astute.billing_entity e
WHERE e.xero_tenant_id IS NOT NULL AND e.xero_go_live_date IS NOT NULL
  AND (%(entity_ids)s::bigint[] IS NULL OR e.id = ANY (%(entity_ids)s::bigint[]))
GROUP BY e.xero_tenant_id
ORDER BY min(e.id);
