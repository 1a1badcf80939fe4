-- After a full read: what Xero no longer holds (it was not among the documents read).
UPDATE xero_sync.xero_document d SET missing_since = now()
WHERE d.tenant_id = %(tenant_id)s AND d.missing_since IS NULL
  AND NOT EXISTS (SELECT 1 FROM xero_seen s WHERE s.kind = d.kind AND s.xero_id = d.xero_id);
