-- An organisation this run can no longer export to (daily limit, authorisation): say so, keep its documents for later.
WITH stopped AS (
    UPDATE xero_sync.run_entity SET decision = 'stopped', detail = %(detail)s
    WHERE run_id = %(run_id)s AND tenant_id = %(tenant_id)s AND decision = 'export'
), deferred AS (
    UPDATE xero_sync.run_document rd SET stage = 'deferred'
    WHERE rd.run_id = %(run_id)s AND rd.tenant_id = %(tenant_id)s AND rd.stage IN ('selected', 'ready')
      AND NOT EXISTS (SELECT 1 FROM xero_sync.document_export x
                      WHERE x.kind = rd.kind AND x.document_id = rd.document_id AND x.run_id = %(run_id)s)
)
UPDATE xero_sync.export_chunk SET status = 'stopped'
WHERE run_id = %(run_id)s AND tenant_id = %(tenant_id)s AND status = 'planned';
