-- A drift is recorded once: while one is open for a document, finding it again adds nothing.
INSERT INTO xero_sync.drift (tenant_id, kind, astute_id, xero_id, number, drift, detail, what_to_do, found_by)
SELECT %(tenant_id)s, kind, astute_id, xero_id, number, drift, detail, what_to_do, %(found_by)s
FROM drift_found
ON CONFLICT (tenant_id, kind, coalesce(xero_id::text, ''), coalesce(astute_id, 0), drift) WHERE resolved_at IS NULL
DO NOTHING;
