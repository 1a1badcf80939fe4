-- After a full read: what Xero no longer holds. Only what no page brought (xero_unseen) can be; of it, what the
-- confirmation by id did not find either (it was not among the documents read).
UPDATE xero_sync.xero_document d SET missing_since = now()
FROM xero_unseen u
WHERE d.tenant_id = %(tenant_id)s AND d.kind = u.kind AND d.xero_id = u.xero_id AND d.missing_since IS NULL
  AND NOT EXISTS (SELECT 1 FROM xero_seen s WHERE s.kind = d.kind AND s.xero_id = d.xero_id);
