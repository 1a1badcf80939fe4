-- Per-document outcomes of one call, written in the same transaction as its api_log row; and the later finding
-- that a document refused for a taken number was our own copy (failed -> exported).
UPDATE {export_table} x
SET status = o.status,
    {xero_id_column} = COALESCE(o.xero_id, x.{xero_id_column}),
    exported_at = CASE WHEN o.status = 'exported' THEN now() ELSE x.exported_at END,
    last_error = o.error,
    updated_at = now()
FROM unnest(%(document_ids)s::bigint[], %(statuses)s::text[], %(xero_ids)s::uuid[], %(errors)s::text[])
     AS o(document_id, status, xero_id, error)
WHERE x.{id_column} = o.document_id AND x.status IN ('sending', 'failed');
