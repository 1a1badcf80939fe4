-- A sync of one organisation that read everything it asked for: the next one asks what changed after the newest.
INSERT INTO xero_sync.status_sync AS s (tenant_id, modified_since, last_success_at, last_full_at, last_error, last_calls)
VALUES (%(tenant_id)s, %(modified_since)s, now(), CASE WHEN %(full)s THEN now() END, NULL, %(calls)s)
ON CONFLICT (tenant_id) DO UPDATE SET
    modified_since = greatest(s.modified_since, excluded.modified_since),
    last_success_at = excluded.last_success_at,
    last_full_at = coalesce(excluded.last_full_at, s.last_full_at),
    last_error = NULL,
    last_calls = excluded.last_calls;
