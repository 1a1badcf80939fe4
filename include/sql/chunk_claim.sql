-- Mark a chunk's documents in flight before the call, so that a crash leaves a trace to reconcile.
INSERT INTO {export_table} ({id_column}, tenant_id, status, run_id, chunk_no, attempts)
SELECT id, %(tenant_id)s, 'sending', %(run_id)s, %(chunk_no)s, 1
FROM unnest(%(document_ids)s::bigint[]) AS id
ON CONFLICT ({id_column}) DO UPDATE
SET status = 'sending', tenant_id = EXCLUDED.tenant_id, run_id = EXCLUDED.run_id, chunk_no = EXCLUDED.chunk_no,
    attempts = {export_table}.attempts + 1, updated_at = now()
WHERE {export_table}.status IN ('failed', 'reset', 'sending')
RETURNING {id_column};
