-- The archive file's content: every api_log column by name (so the file's layout is this list, not
-- whatever the table's column order becomes), oldest first, as CSV with a header line.
COPY (
    SELECT a.id, a.run_id, a.tenant_id, a.method, a.endpoint, a.chunk_no, a.item_count, a.http_status,
           a.started_at, a.duration_ms, a.idempotency_key, a.rate_limits, a.outcome, a.error
    FROM xero_sync.api_log a
    JOIN pg_temp.api_log_archive t ON t.id = a.id
    ORDER BY a.id
) TO STDOUT WITH (FORMAT csv, HEADER true);
