-- The connection's refresh token starts the chain the first time it is seen (sealed, like every token stored).
INSERT INTO xero_sync.oauth_token (connection_id, seed_fingerprint, refresh_token)
VALUES (%(connection_id)s, %(seed)s, %(refresh_token)s)
ON CONFLICT (connection_id) DO NOTHING;
