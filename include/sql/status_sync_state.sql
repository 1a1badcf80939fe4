-- Where an organisation's incremental read stands, and this sync's number (migration 016: what a sync after the
-- last one to finish changed is what an incremental drift check compares). full_due: its last full reconciliation
-- was full_every_days or more days ago (UTC days by the database's clock, which wrote it; NULL days: never due).
SELECT nextval('xero_sync.status_sync_no') AS sync_no, s.last_success_no, s.tenant_id IS NOT NULL AS read_before,
       (s.last_full_at AT TIME ZONE 'UTC')::date AS last_full_on,
       coalesce((now() AT TIME ZONE 'UTC')::date - (s.last_full_at AT TIME ZONE 'UTC')::date
                >= %(full_every_days)s::integer, %(full_every_days)s::integer IS NOT NULL) AS full_due
FROM (SELECT 1) AS one
LEFT JOIN xero_sync.status_sync s ON s.tenant_id = %(tenant_id)s;
