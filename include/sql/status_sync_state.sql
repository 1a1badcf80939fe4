-- Where an organisation's incremental read stands.
SELECT modified_since, last_full_at FROM xero_sync.status_sync WHERE tenant_id = %(tenant_id)s;
