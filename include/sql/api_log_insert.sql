INSERT INTO xero_sync.api_log
    (run_id, tenant_id, method, endpoint, chunk_no, item_count, http_status, started_at, duration_ms,
     idempotency_key, rate_limits, outcome, error)
VALUES (%(run_id)s, %(tenant_id)s, %(method)s, %(endpoint)s, %(chunk_no)s, %(item_count)s, %(http_status)s,
        %(started_at)s, %(duration_ms)s, %(idempotency_key)s, %(rate_limits)s, %(outcome)s, %(error)s);
