-- Where an organisation's incremental read stands, and this sync's number (migration 016: what a sync after the
-- last one to finish changed is what an incremental drift check compares).
SELECT nextval('xero_sync.status_sync_no') AS sync_no, s.last_success_no, s.tenant_id IS NOT NULL AS read_before
FROM (SELECT 1) AS one
LEFT JOIN xero_sync.status_sync s ON s.tenant_id = %(tenant_id)s;
