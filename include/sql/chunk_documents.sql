-- The documents of one chunk, with what Xero needs: effective currency and the linked Contact.
SELECT d.document_id, d.number, d.reference, d.document_date, d.due_date,
       COALESCE(d.currency, r.default_currency), d.line_amount_types, cl.xero_contact_id::text
FROM xero_sync.run_document rd
JOIN xero_sync.astute_document d ON d.kind = %(kind)s AND d.document_id = rd.document_id
JOIN astute.billing_entity e ON e.id = d.billing_entity_id
JOIN astute.regulatory_region r ON r.code = e.default_regulatory_region
JOIN xero_sync.contact_link cl ON cl.customer_id = d.customer_id AND cl.tenant_id = rd.tenant_id
WHERE rd.run_id = %(run_id)s AND rd.tenant_id = %(tenant_id)s AND rd.kind = %(kind)s AND rd.chunk_no = %(chunk_no)s
  AND rd.stage = 'ready'
ORDER BY d.document_id;
