-- The export state of a chunk's ready documents; updated_at of a 'sending' row is when an earlier
-- attempt claimed it (reconciliation looks from there).
SELECT rd.document_id, x.status, x.updated_at
FROM xero_sync.run_document rd
LEFT JOIN xero_sync.document_export x ON x.kind = %(kind)s AND x.document_id = rd.document_id
WHERE rd.run_id = %(run_id)s AND rd.tenant_id = %(tenant_id)s AND rd.kind = %(kind)s AND rd.chunk_no = %(chunk_no)s
  AND rd.stage = 'ready'
ORDER BY rd.document_id;
