-- Leases among these keys that another holder has and that have not expired: when the last of them expires
-- unless renewed, in seconds from now on the database's clock.
SELECT max(extract(epoch FROM expires_at - now()))::float8
FROM xero_sync.lease
WHERE lease_key = ANY (%(keys)s::text[]) AND holder <> %(holder)s AND expires_at > now();
