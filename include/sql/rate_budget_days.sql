-- Each organisation's day as counted so far (no lock: planning reads, calls take under the row lock).
SELECT tenant_id, day_started_at, day_calls, day_blocked_until, clock_timestamp()
FROM xero_sync.rate_budget
WHERE tenant_id = ANY (%(tenant_ids)s::text[]);
