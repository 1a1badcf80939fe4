-- What a preview's contact step would do, per billing entity whose documents of the run are the customer's
-- (all entities, or one).
SELECT DISTINCT rd.billing_entity_id, pc.action, pc.tenant_id, pc.customer_id, pc.astute_name,
       pc.xero_contact_name, pc.xero_contact_id::text
FROM xero_sync.preview_contact pc
JOIN xero_sync.run_document rd ON rd.run_id = pc.run_id AND rd.tenant_id = pc.tenant_id
                              AND rd.customer_id = pc.customer_id
WHERE pc.run_id = %(run_id)s
  AND (%(billing_entity_id)s::bigint IS NULL OR rd.billing_entity_id = %(billing_entity_id)s::bigint)
ORDER BY rd.billing_entity_id, pc.action, pc.astute_name, pc.customer_id;
