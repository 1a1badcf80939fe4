-- Open drifts this sync looked at again and no longer found: Astute and Xero agree now.
UPDATE xero_sync.drift d SET resolved_at = now()
WHERE d.tenant_id = %(tenant_id)s AND d.resolved_at IS NULL
  AND (%(full)s OR EXISTS (SELECT 1 FROM xero_seen s WHERE s.kind = d.kind AND s.xero_id = d.xero_id))
  AND NOT EXISTS (SELECT 1 FROM drift_found f
                  WHERE f.kind = d.kind AND f.drift = d.drift
                    AND f.xero_id IS NOT DISTINCT FROM d.xero_id AND f.astute_id IS NOT DISTINCT FROM d.astute_id);
