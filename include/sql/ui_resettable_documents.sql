-- An entity's documents that may be reset for export (the rules of operations.actions.reset_for_export), dated in
-- the chosen range: Sent, of an entity linked to Xero, and history never sent (dated before go-live), mock-exported
-- or failed. Exported and in-flight ('sending') documents cannot be reset; an exported one Xero no longer holds is
-- the read-back's to offer (the drift list says so).
SELECT d.kind, d.document_id, d.number, d.document_date, COALESCE(x.status, 'history') AS state, x.last_error
FROM xero_sync.astute_document d
JOIN astute.billing_entity e ON e.id = d.billing_entity_id
LEFT JOIN xero_sync.document_export x ON x.kind = d.kind AND x.document_id = d.document_id
WHERE d.billing_entity_id = %(billing_entity_id)s AND d.status = 'Sent' AND e.xero_tenant_id IS NOT NULL
  AND (x.status IN ('mock_exported', 'failed')
       OR (x.status IS NULL AND (e.xero_go_live_date IS NULL OR d.document_date < e.xero_go_live_date)))
  AND (%(date_from)s::date IS NULL OR d.document_date >= %(date_from)s::date)
  AND (%(date_to)s::date IS NULL OR d.document_date <= %(date_to)s::date)
ORDER BY d.document_date, d.kind DESC, d.document_id
LIMIT %(limit)s;
