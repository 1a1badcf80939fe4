-- What Xero says is used (its limit less the X-...-Remaining header of an answer): our counts are raised
-- to it, never lowered, and only in a window that was open when the call started (a header from the
-- window before says nothing about this one).
WITH organisation AS (
    UPDATE xero_sync.rate_budget
    SET calls = CASE WHEN %(minute_used)s::int IS NOT NULL AND window_started_at <= %(started_at)s
                     THEN GREATEST(calls, %(minute_used)s::int) ELSE calls END,
        day_calls = CASE WHEN %(day_used)s::int IS NOT NULL AND day_started_at <= %(started_at)s
                         THEN GREATEST(day_calls, %(day_used)s::int) ELSE day_calls END
    WHERE tenant_id = %(tenant_id)s
)
UPDATE xero_sync.rate_budget
SET calls = GREATEST(calls, %(app_used)s::int)
WHERE tenant_id = %(app_row)s AND %(app_used)s::int IS NOT NULL AND window_started_at <= %(started_at)s;
