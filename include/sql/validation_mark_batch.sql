UPDATE xero_sync.run_invoice
SET stage = CASE WHEN invoice_id = ANY (%(held_ids)s::bigint[]) THEN 'held' ELSE 'ready' END
WHERE run_id = %(run_id)s AND invoice_id = ANY (%(invoice_ids)s::bigint[]);
