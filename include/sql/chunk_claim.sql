-- Mark a chunk's documents in flight before the call, so that a crash leaves a trace to reconcile.
-- The first claim fixes the document's identity (source_url) and the start of its reconciliation
-- window (first_claimed_at); later claims never move either. first_claimed_at also tells this export of the
-- document from a later one (after a reset): it is part of the call's Idempotency-Key.
INSERT INTO {export_table} ({id_column}, tenant_id, status, run_id, chunk_no, attempts, first_claimed_at, source_url)
SELECT c.id, %(tenant_id)s, 'sending', %(run_id)s, %(chunk_no)s, 1, now(), c.source_url
FROM unnest(%(document_ids)s::bigint[], %(source_urls)s::text[]) AS c(id, source_url)
ON CONFLICT ({id_column}) DO UPDATE
SET status = 'sending', tenant_id = EXCLUDED.tenant_id, run_id = EXCLUDED.run_id, chunk_no = EXCLUDED.chunk_no,
    attempts = {export_table}.attempts + 1, updated_at = now(),
    first_claimed_at = COALESCE({export_table}.first_claimed_at, now()),
    source_url = CASE WHEN {export_table}.first_claimed_at IS NULL THEN EXCLUDED.source_url
                      ELSE COALESCE({export_table}.source_url, EXCLUDED.source_url) END
WHERE {export_table}.status IN ('failed', 'reset', 'sending')
RETURNING {id_column}, first_claimed_at;
