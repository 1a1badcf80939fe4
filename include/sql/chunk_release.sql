-- A call Xero certainly did not act on (e.g. a daily-limit 429): put the claims back as they were.
WITH previous AS (
    SELECT * FROM unnest(%(document_ids)s::bigint[], %(previous_statuses)s::text[]) AS p(document_id, status)
), dropped AS (
    DELETE FROM {export_table} x USING previous p
    WHERE x.{id_column} = p.document_id AND p.status IS NULL AND x.status = 'sending'
)
UPDATE {export_table} x SET status = p.status, last_sent_at = NULL, updated_at = now()
FROM previous p
WHERE x.{id_column} = p.document_id AND p.status IS NOT NULL AND x.status = 'sending';
