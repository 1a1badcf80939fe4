-- The Sent documents of one kind a reset asks for, with their export state (NULL: never handled).
SELECT d.document_id, d.number, e.xero_tenant_id, x.status, x.xero_id::text, x.exported_at
FROM xero_sync.astute_document d
JOIN astute.billing_entity e ON e.id = d.billing_entity_id
LEFT JOIN xero_sync.document_export x ON x.kind = %(kind)s AND x.document_id = d.document_id
WHERE d.kind = %(kind)s AND d.status = 'Sent'
  AND (d.document_id = ANY (%(document_ids)s::bigint[])
       OR (d.billing_entity_id = %(billing_entity_id)s
           AND (%(date_from)s::date IS NULL OR d.document_date >= %(date_from)s::date)
           AND (%(date_to)s::date IS NULL OR d.document_date <= %(date_to)s::date)))
ORDER BY d.document_id;
