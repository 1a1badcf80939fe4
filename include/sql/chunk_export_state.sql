-- The export state of a chunk's ready documents, read before the claim: what an earlier attempt left
-- (its status, the identity it sent, when it was first claimed and when its last call started).
SELECT rd.document_id, x.status, x.first_claimed_at, x.last_sent_at, x.source_url
FROM xero_sync.run_document rd
LEFT JOIN xero_sync.document_export x ON x.kind = %(kind)s AND x.document_id = rd.document_id
WHERE rd.run_id = %(run_id)s AND rd.tenant_id = %(tenant_id)s AND rd.kind = %(kind)s AND rd.chunk_no = %(chunk_no)s
  AND rd.stage = 'ready'
ORDER BY rd.document_id;
