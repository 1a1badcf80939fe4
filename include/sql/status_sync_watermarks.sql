-- Where each kind's incremental read of an organisation stands: the newest UpdatedDateUTC read of that kind.
SELECT kind, modified_since FROM xero_sync.status_sync_watermark WHERE tenant_id = %(tenant_id)s;
