-- Serialises refreshes of one chain across every worker.
SELECT access_token, access_expires_at, scope, seed_fingerprint, refresh_token
FROM xero_sync.oauth_token
WHERE connection_id = %(connection_id)s
FOR UPDATE;
