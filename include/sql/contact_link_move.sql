-- A Contact merged into another in Xero: the link follows it.
UPDATE xero_sync.contact_link
SET xero_contact_id = %(contact_id)s::uuid, xero_contact_name = %(name)s, linked_at = now()
WHERE customer_id = %(customer_id)s AND tenant_id = %(tenant_id)s;
