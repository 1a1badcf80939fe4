-- Both tokens arrive sealed with Airflow's Fernet key; never plaintext.
UPDATE xero_sync.oauth_token
SET seed_fingerprint = %(seed)s,
    refresh_token = %(refresh_token)s,
    access_token = %(access_token)s,
    access_expires_at = %(expires_at)s,
    scope = %(scope)s,
    rotated_at = now()
WHERE connection_id = %(connection_id)s;
