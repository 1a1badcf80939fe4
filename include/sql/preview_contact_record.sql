-- What a preview's contact step would do for these customers of one organisation (a retried task records
-- it again).
INSERT INTO xero_sync.preview_contact (run_id, tenant_id, customer_id, action, xero_contact_id, xero_contact_name,
                                       astute_name)
SELECT %(run_id)s, %(tenant_id)s, customer_id, %(action)s, contact_id, contact_name, astute_name
FROM unnest(%(customer_ids)s::bigint[], %(contact_ids)s::uuid[], %(contact_names)s::text[], %(astute_names)s::text[])
     AS c (customer_id, contact_id, contact_name, astute_name)
ON CONFLICT (run_id, tenant_id, customer_id) DO UPDATE
SET action = EXCLUDED.action, xero_contact_id = EXCLUDED.xero_contact_id,
    xero_contact_name = EXCLUDED.xero_contact_name, astute_name = EXCLUDED.astute_name;
