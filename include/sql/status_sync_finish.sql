-- A sync of one organisation that read everything it asked for. modified_since: the oldest of its marks per kind
-- (status_sync_watermark), where its read stands; last_success_no: what its drift checks covered (migration 016).
INSERT INTO xero_sync.status_sync AS s (tenant_id, modified_since, last_success_at, last_full_at, last_error, last_calls,
                                      last_success_no)
VALUES (%(tenant_id)s,
        (SELECT min(modified_since) FROM xero_sync.status_sync_watermark WHERE tenant_id = %(tenant_id)s),
        now(), CASE WHEN %(full)s THEN now() END, NULL, %(calls)s, %(sync_no)s)
ON CONFLICT (tenant_id) DO UPDATE SET
    modified_since = excluded.modified_since,
    last_success_at = excluded.last_success_at,
    last_full_at = coalesce(excluded.last_full_at, s.last_full_at),
    last_error = NULL,
    last_calls = excluded.last_calls,
    last_success_no = excluded.last_success_no;
