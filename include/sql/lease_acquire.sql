-- Take the leases that are free (never taken, released, or expired on the database's clock) or already ours, for
-- one time-to-live from now; return the keys taken. One statement: safe behind a transaction-mode pooler.
INSERT INTO xero_sync.lease AS l (lease_key, holder, acquired_at, expires_at)
SELECT k, %(holder)s, now(), now() + %(ttl)s::interval FROM unnest(%(keys)s::text[]) AS k
ON CONFLICT (lease_key) DO UPDATE
SET holder = EXCLUDED.holder, acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at
WHERE l.expires_at <= now() OR l.holder = EXCLUDED.holder
RETURNING lease_key;
