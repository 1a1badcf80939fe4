-- The next batch of a run's documents of one kind to validate, for one organisation (keyset paging on
-- the document id). A credit note that credits an invoice says whether Xero could allocate it there.
SELECT d.document_id, d.number, c.name, d.document_date, d.due_date,
       COALESCE(d.currency, r.default_currency),
       (SELECT count(*) FROM xero_sync.astute_document_line l
        WHERE l.kind = %(kind)s AND l.document_id = d.document_id),
       (SELECT COALESCE(sum(round(l.quantity * l.unit_amount, 2)), 0) FROM xero_sync.astute_document_line l
        WHERE l.kind = %(kind)s AND l.document_id = d.document_id),
       ci.id, COALESCE(ci.invoice_number, 'id ' || ci.id || ' (no number)'),
       CASE WHEN ci.id IS NULL THEN NULL
            WHEN ci.billing_entity_id <> d.billing_entity_id THEN 'is billed by another billing entity'
            WHEN ci.customer_id <> d.customer_id THEN 'belongs to another customer'
            WHEN COALESCE(ci.currency, r.default_currency) <> COALESCE(d.currency, r.default_currency)
                THEN 'is in ' || COALESCE(ci.currency, r.default_currency)
            WHEN ci.status <> 'Sent' THEN 'is ' || ci.status || ' in Astute' END,
       d.reference
FROM xero_sync.run_document rd
JOIN xero_sync.astute_document d ON d.kind = %(kind)s AND d.document_id = rd.document_id
JOIN astute.customer c ON c.id = d.customer_id
JOIN astute.billing_entity e ON e.id = d.billing_entity_id
JOIN astute.regulatory_region r ON r.code = e.default_regulatory_region
LEFT JOIN astute.invoice ci ON ci.id = d.credited_invoice_id
WHERE rd.run_id = %(run_id)s AND rd.tenant_id = %(tenant_id)s AND rd.kind = %(kind)s AND rd.stage = 'selected'
  AND rd.document_id > %(after_document_id)s
ORDER BY rd.document_id
LIMIT %(batch_size)s;
