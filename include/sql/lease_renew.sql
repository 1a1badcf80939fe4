-- A live holder's heartbeat: its leases last one more time-to-live. A lease another holder has taken (after it
-- expired) is not renewed, and is missing from the keys returned.
UPDATE xero_sync.lease SET expires_at = now() + %(ttl)s::interval
WHERE lease_key = ANY (%(keys)s::text[]) AND holder = %(holder)s
RETURNING lease_key;
