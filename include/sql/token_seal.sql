-- Seals a row written in plaintext by a version before encryption: the same tokens, nothing rotated.
UPDATE xero_sync.oauth_token
SET refresh_token = %(refresh_token)s,
    access_token = %(access_token)s
WHERE connection_id = %(connection_id)s;
