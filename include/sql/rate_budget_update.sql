UPDATE xero_sync.rate_budget
SET window_started_at = %(window_started_at)s, calls = %(calls)s, blocked_until = %(blocked_until)s,
    day_started_at = %(day_started_at)s, day_calls = %(day_calls)s, day_blocked_until = %(day_blocked_until)s
WHERE tenant_id = %(tenant_id)s;
