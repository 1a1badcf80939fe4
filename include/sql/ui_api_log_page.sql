-- The API Log report: one row per call to Xero, newest first, a page at a time by keyset (id < before),
-- never the whole log; filtered by export run and by organisation (tenant), optionally only the calls
-- that did not succeed. With the run, the Airflow DAG run behind it.
SELECT a.id, a.run_id, r.dag_id, r.airflow_run_id, a.tenant_id, a.method, a.endpoint, a.chunk_no, a.item_count,
       a.http_status, a.started_at, a.duration_ms, a.error,
       (a.rate_limits ->> 'X-DayLimit-Remaining')::integer,
       (a.rate_limits ->> 'X-MinLimit-Remaining')::integer,
       CASE WHEN jsonb_typeof(a.outcome) = 'array' THEN
           (SELECT count(*) FROM jsonb_array_elements(a.outcome) e WHERE e ->> 'status' = 'exported') END,
       CASE WHEN jsonb_typeof(a.outcome) = 'array' THEN
           (SELECT count(*) FROM jsonb_array_elements(a.outcome) e WHERE e ->> 'status' = 'failed') END
FROM xero_sync.api_log a
LEFT JOIN xero_sync.export_run r ON r.run_id = a.run_id
WHERE (%(run_id)s::bigint IS NULL OR a.run_id = %(run_id)s::bigint)
  AND (%(tenant_id)s::text IS NULL OR a.tenant_id = %(tenant_id)s::text)
  AND (NOT %(errors_only)s::boolean OR a.http_status IS NULL OR a.http_status >= 400)
  AND (%(before_id)s::bigint IS NULL OR a.id < %(before_id)s::bigint)
ORDER BY a.id DESC
LIMIT %(limit)s;
