-- The Sent documents of one kind a reset asks for, with their export state (NULL: never handled), and whether
-- the status sync found an exported one gone from Xero (an open drift: no longer held, voided or deleted there).
SELECT d.document_id, d.number, e.xero_tenant_id, x.status, x.xero_id::text, x.exported_at,
       EXISTS (SELECT 1 FROM xero_sync.drift g
               WHERE g.kind = %(kind)s AND g.astute_id = d.document_id AND g.resolved_at IS NULL
                 AND g.drift IN ('missing_in_xero', 'voided_in_xero', 'deleted_in_xero')) AS gone_from_xero
FROM xero_sync.astute_document d
JOIN astute.billing_entity e ON e.id = d.billing_entity_id
LEFT JOIN xero_sync.document_export x ON x.kind = %(kind)s AND x.document_id = d.document_id
WHERE d.kind = %(kind)s AND d.status = 'Sent'
  AND (d.document_id = ANY (%(document_ids)s::bigint[])
       OR (d.billing_entity_id = %(billing_entity_id)s
           AND (%(date_from)s::date IS NULL OR d.document_date >= %(date_from)s::date)
           AND (%(date_to)s::date IS NULL OR d.document_date <= %(date_to)s::date)))
ORDER BY d.document_id;
