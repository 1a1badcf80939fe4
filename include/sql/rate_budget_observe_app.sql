-- What Xero says the app has used of its minute across every organisation (X-AppMinLimit-Remaining).
UPDATE xero_sync.rate_budget
SET calls = GREATEST(calls, %(app_used)s::int)
WHERE tenant_id = %(app_row)s AND window_started_at <= %(started_at)s;
