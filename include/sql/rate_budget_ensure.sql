INSERT INTO xero_sync.rate_budget (tenant_id, window_started_at, calls)
VALUES (%(tenant_id)s, clock_timestamp(), 0)
ON CONFLICT (tenant_id) DO NOTHING;
