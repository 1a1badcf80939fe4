-- An organisation this run can no longer export to (daily limit, authorisation): say so, keep its invoices for later.
WITH stopped AS (
    UPDATE xero_sync.run_entity SET decision = 'stopped', detail = %(detail)s
    WHERE run_id = %(run_id)s AND tenant_id = %(tenant_id)s AND decision = 'export'
), deferred AS (
    UPDATE xero_sync.run_invoice SET stage = 'deferred'
    WHERE run_id = %(run_id)s AND tenant_id = %(tenant_id)s AND stage IN ('selected', 'ready')
      AND invoice_id NOT IN (SELECT invoice_id FROM xero_sync.invoice_export WHERE run_id = %(run_id)s)
)
UPDATE xero_sync.export_chunk SET status = 'stopped'
WHERE run_id = %(run_id)s AND tenant_id = %(tenant_id)s AND status = 'planned';
