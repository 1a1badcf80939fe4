-- The invoices of one chunk, with what Xero needs: effective currency and the linked Contact.
SELECT i.id, i.invoice_number, i.reference, i.invoice_date, i.due_date,
       COALESCE(i.currency, r.default_currency), i.line_amount_types, cl.xero_contact_id::text
FROM xero_sync.run_invoice ri
JOIN astute.invoice i ON i.id = ri.invoice_id
JOIN astute.billing_entity e ON e.id = i.billing_entity_id
JOIN astute.regulatory_region r ON r.code = e.default_regulatory_region
JOIN xero_sync.contact_link cl ON cl.customer_id = i.customer_id AND cl.tenant_id = ri.tenant_id
WHERE ri.run_id = %(run_id)s AND ri.tenant_id = %(tenant_id)s AND ri.chunk_no = %(chunk_no)s
ORDER BY i.id;
