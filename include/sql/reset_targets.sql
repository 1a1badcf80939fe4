-- The Sent invoices a reset asks for, with their export state (NULL: never handled).
SELECT i.id, i.invoice_number, e.xero_tenant_id, x.status, x.xero_invoice_id::text, x.exported_at
FROM astute.invoice i
JOIN astute.billing_entity e ON e.id = i.billing_entity_id
LEFT JOIN xero_sync.invoice_export x ON x.invoice_id = i.id
WHERE i.status = 'Sent'
  AND (i.id = ANY (%(invoice_ids)s::bigint[])
       OR (i.billing_entity_id = %(billing_entity_id)s
           AND (%(date_from)s::date IS NULL OR i.invoice_date >= %(date_from)s::date)
           AND (%(date_to)s::date IS NULL OR i.invoice_date <= %(date_to)s::date)))
ORDER BY i.id;
