-- Why an organisation's sync stopped (the next sync reads again from where the last success left off).
INSERT INTO xero_sync.status_sync AS s (tenant_id, last_error, last_calls)
VALUES (%(tenant_id)s, %(error)s, %(calls)s)
ON CONFLICT (tenant_id) DO UPDATE SET last_error = excluded.last_error, last_calls = excluded.last_calls;
