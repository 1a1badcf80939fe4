-- What Xero says an organisation has used (its limit less the X-...-Remaining header of an answer): our
-- counts are raised to it, never lowered, and only in a window that was open when the call started (a
-- header from the window before says nothing about this one). One row per statement: a worker holds at
-- most one budget row's lock outside the pacer's own order (organisation, then app), so none deadlocks.
UPDATE xero_sync.rate_budget
SET calls = CASE WHEN %(minute_used)s::int IS NOT NULL AND window_started_at <= %(started_at)s
                 THEN GREATEST(calls, %(minute_used)s::int) ELSE calls END,
    day_calls = CASE WHEN %(day_used)s::int IS NOT NULL AND day_started_at <= %(started_at)s
                     THEN GREATEST(day_calls, %(day_used)s::int) ELSE day_calls END
WHERE tenant_id = %(tenant_id)s;
