INSERT INTO xero_sync.contact_link (customer_id, tenant_id, xero_contact_id, xero_contact_name)
SELECT * FROM unnest(%(customer_ids)s::bigint[], %(tenant_ids)s::text[], %(contact_ids)s::uuid[], %(names)s::text[])
ON CONFLICT (customer_id, tenant_id) DO NOTHING;
