-- The documents a preview would hold back (all entities, or one), each with its reasons and their rules
-- (what to fix: report.fixes).
SELECT rd.billing_entity_id, rd.kind, rd.document_id, d.number,
       string_agg(v.message, ' | ' ORDER BY v.line_no NULLS FIRST, v.rule),
       array_agg(DISTINCT v.rule ORDER BY v.rule)
FROM xero_sync.run_document rd
JOIN xero_sync.astute_document d ON d.kind = rd.kind AND d.document_id = rd.document_id
JOIN xero_sync.validation_issue v ON v.run_id = rd.run_id AND v.kind = rd.kind AND v.document_id = rd.document_id
WHERE rd.run_id = %(run_id)s AND rd.stage = 'held'
  AND (%(billing_entity_id)s::bigint IS NULL OR rd.billing_entity_id = %(billing_entity_id)s::bigint)
GROUP BY rd.billing_entity_id, rd.kind, rd.document_id, d.number
ORDER BY rd.billing_entity_id, rd.kind DESC, rd.document_id;
