-- The next batch of a run's invoices to validate, for one organisation (keyset paging on invoice_id).
SELECT i.id, i.invoice_number, c.name, i.invoice_date, i.due_date,
       COALESCE(i.currency, r.default_currency),
       (SELECT count(*) FROM astute.invoice_line l WHERE l.invoice_id = i.id),
       (SELECT COALESCE(sum(round(l.quantity * l.unit_amount, 2)), 0) FROM astute.invoice_line l WHERE l.invoice_id = i.id)
FROM xero_sync.run_invoice ri
JOIN astute.invoice i ON i.id = ri.invoice_id
JOIN astute.customer c ON c.id = i.customer_id
JOIN astute.billing_entity e ON e.id = i.billing_entity_id
JOIN astute.regulatory_region r ON r.code = e.default_regulatory_region
WHERE ri.run_id = %(run_id)s AND ri.tenant_id = %(tenant_id)s AND ri.stage = 'selected'
  AND ri.invoice_id > %(after_invoice_id)s
ORDER BY ri.invoice_id
LIMIT %(batch_size)s;
