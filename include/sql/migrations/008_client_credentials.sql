-- A Xero Custom Connection (grant type client_credentials) has no refresh token: its row holds only the
-- shared access token, until it expires.
ALTER TABLE xero_sync.oauth_token ALTER COLUMN refresh_token DROP NOT NULL;
