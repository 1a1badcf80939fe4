-- Per-invoice outcomes of one call, written in the same transaction as its api_log row.
UPDATE xero_sync.invoice_export x
SET status = o.status,
    xero_invoice_id = COALESCE(o.xero_invoice_id, x.xero_invoice_id),
    exported_at = CASE WHEN o.status = 'exported' THEN now() ELSE x.exported_at END,
    last_error = o.error,
    updated_at = now()
FROM unnest(%(invoice_ids)s::bigint[], %(statuses)s::text[], %(xero_invoice_ids)s::uuid[], %(errors)s::text[])
     AS o(invoice_id, status, xero_invoice_id, error)
WHERE x.invoice_id = o.invoice_id AND x.status = 'sending';
