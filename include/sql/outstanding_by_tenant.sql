-- How many documents each organisation of the run has outstanding in the run's window (not counting
-- those held back by an earlier validation): what a run plans its share of capacity from.
SELECT o.tenant_id, count(*) FILTER (WHERE h.document_id IS NULL) AS ready, count(h.document_id) AS held
FROM xero_sync.run_entity re
JOIN xero_sync.outstanding_document o ON o.billing_entity_id = re.billing_entity_id
LEFT JOIN xero_sync.document_hold h ON h.kind = o.kind AND h.document_id = o.document_id
WHERE re.run_id = %(run_id)s
  AND re.decision IN ('export', 'stopped')
  AND (%(date_from)s::date IS NULL OR o.document_date >= %(date_from)s::date)
  AND o.document_date <= %(date_to)s::date
GROUP BY o.tenant_id;
