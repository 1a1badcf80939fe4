-- Which Astute documents these Xero documents are already linked to (a Xero document is never adopted twice).
SELECT x.xero_id, x.document_id, d.number
FROM xero_sync.document_export x
JOIN xero_sync.astute_document d ON d.kind = x.kind AND d.document_id = x.document_id
WHERE x.kind = %(kind)s AND x.xero_id = ANY (%(xero_ids)s::uuid[]);
