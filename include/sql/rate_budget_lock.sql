-- An organisation's budget (or the app's minute), locked: every worker takes calls from the same row.
SELECT window_started_at, calls, blocked_until, day_started_at, day_calls, day_blocked_until, clock_timestamp()
FROM xero_sync.rate_budget
WHERE tenant_id = %(tenant_id)s
FOR UPDATE;
