-- A call Xero certainly did not act on (e.g. a daily-limit 429): put the claims back as they were.
WITH previous AS (
    SELECT * FROM unnest(%(invoice_ids)s::bigint[], %(previous_statuses)s::text[]) AS p(invoice_id, status)
), dropped AS (
    DELETE FROM xero_sync.invoice_export x USING previous p
    WHERE x.invoice_id = p.invoice_id AND p.status IS NULL AND x.status = 'sending'
)
UPDATE xero_sync.invoice_export x SET status = p.status, updated_at = now()
FROM previous p
WHERE x.invoice_id = p.invoice_id AND p.status IS NOT NULL AND x.status = 'sending';
