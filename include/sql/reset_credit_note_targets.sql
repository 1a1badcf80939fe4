-- The Sent credit notes a reset asks for, with their export state (NULL: never handled).
SELECT c.id, c.credit_note_number, e.xero_tenant_id, x.status, x.xero_credit_note_id::text, x.exported_at
FROM astute.credit_note c
JOIN astute.billing_entity e ON e.id = c.billing_entity_id
LEFT JOIN xero_sync.credit_note_export x ON x.credit_note_id = c.id
WHERE c.status = 'Sent'
  AND (c.id = ANY (%(credit_note_ids)s::bigint[])
       OR (c.billing_entity_id = %(billing_entity_id)s
           AND (%(date_from)s::date IS NULL OR c.credit_date >= %(date_from)s::date)
           AND (%(date_to)s::date IS NULL OR c.credit_date <= %(date_to)s::date)))
ORDER BY c.id;
