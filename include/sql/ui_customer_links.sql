-- Link to Xero: the customer, and the Xero Contact it is linked to in each organisation (none: no row of
-- contact_link), with the names of the billing entities that export to that organisation.
SELECT c.id, c.name, l.tenant_id, l.xero_contact_id::text, l.xero_contact_name, l.linked_at,
       (SELECT string_agg(e.name, ', ' ORDER BY e.id) FROM astute.billing_entity e
        WHERE e.xero_tenant_id = l.tenant_id)
FROM astute.customer c
LEFT JOIN xero_sync.contact_link l ON l.customer_id = c.id
WHERE c.id = %(customer_id)s
ORDER BY l.tenant_id;
