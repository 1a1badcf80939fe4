-- A document gone from Xero and reset for export: its drift is dealt with (the next export sends it again), and
-- the Xero document it was exported to is no longer its copy (the payment views show the new one, once sent).
WITH unlinked AS (
    UPDATE xero_sync.xero_document SET astute_id = NULL
    WHERE kind = %(kind)s AND astute_id = ANY (%(document_ids)s::bigint[])
    RETURNING 1
)
UPDATE xero_sync.drift SET resolved_at = now()
WHERE kind = %(kind)s AND astute_id = ANY (%(document_ids)s::bigint[]) AND resolved_at IS NULL
  AND drift IN ('missing_in_xero', 'voided_in_xero', 'deleted_in_xero');
