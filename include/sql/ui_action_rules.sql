-- Why each document a run held back was held (the rules of its validation issues), for the banner's "what to fix".
SELECT v.kind, v.document_id, array_agg(DISTINCT v.rule ORDER BY v.rule) AS rules
FROM xero_sync.validation_issue v
WHERE v.run_id = %(run_id)s
GROUP BY v.kind, v.document_id;
