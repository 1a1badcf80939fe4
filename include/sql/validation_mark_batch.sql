UPDATE xero_sync.run_document
SET stage = CASE WHEN document_id = ANY (%(held_ids)s::bigint[]) THEN 'held' ELSE 'ready' END
WHERE run_id = %(run_id)s AND kind = %(kind)s AND document_id = ANY (%(document_ids)s::bigint[]);
