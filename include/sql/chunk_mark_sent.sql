-- The call carrying these documents leaves now (stamped inside the client, after the token, the organisation's
-- call slot and its minute budget were taken, right before the request is written): until it can no longer land at
-- Xero, they are not looked up or sent again. Fenced: stamped only while this holder still holds the lease on
-- every one of them (a holder that lost them, e.g. frozen past their time-to-live, sends nothing).
WITH held AS (
    SELECT count(*) AS leases FROM xero_sync.lease
    WHERE lease_key = ANY (%(lease_keys)s::text[]) AND holder = %(holder)s AND expires_at > now()
)
UPDATE {export_table} SET last_sent_at = now()
WHERE {id_column} = ANY (%(document_ids)s::bigint[]) AND status = 'sending'
  AND (SELECT leases FROM held) = cardinality(%(lease_keys)s::text[])
RETURNING {id_column};
