DELETE FROM xero_sync.contact_link
WHERE customer_id = %(customer_id)s AND (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s)
RETURNING tenant_id, xero_contact_id::text, xero_contact_name;
