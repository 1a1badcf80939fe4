-- How many calls the API Log's filter matches, counted no further than a cap (the log can hold millions).
SELECT count(*)
FROM (SELECT 1
      FROM xero_sync.api_log a
      WHERE (%(run_id)s::bigint IS NULL OR a.run_id = %(run_id)s::bigint)
        AND (%(tenant_id)s::text IS NULL OR a.tenant_id = %(tenant_id)s::text)
        AND (NOT %(errors_only)s::boolean OR a.http_status IS NULL OR a.http_status >= 400)
      LIMIT %(cap)s) matched;
