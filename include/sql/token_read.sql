-- The tokens as stored: sealed ("fernet:…"), or plaintext from a version before encryption.
SELECT access_token, access_expires_at, scope, seed_fingerprint, refresh_token
FROM xero_sync.oauth_token
WHERE connection_id = %(connection_id)s;
