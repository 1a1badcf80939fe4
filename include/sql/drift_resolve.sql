-- Open drifts no longer found: Astute and Xero agree now. Every open drift of the organisation was looked at again
-- by drift_findings (its scope holds the documents with an open drift), whether or not Xero changed it since.
UPDATE xero_sync.drift d SET resolved_at = now()
WHERE d.tenant_id = %(tenant_id)s AND d.resolved_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM drift_found f
                  WHERE f.kind = d.kind AND f.drift = d.drift
                    AND f.xero_id IS NOT DISTINCT FROM d.xero_id AND f.astute_id IS NOT DISTINCT FROM d.astute_id);
