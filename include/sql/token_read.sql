SELECT access_token, access_expires_at, scope, seed_fingerprint
FROM xero_sync.oauth_token
WHERE connection_id = %(connection_id)s;
