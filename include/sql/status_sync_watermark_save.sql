-- A kind read to its end: its mark moves to the newest UpdatedDateUTC read (never back, never our clock).
INSERT INTO xero_sync.status_sync_watermark AS w (tenant_id, kind, modified_since)
VALUES (%(tenant_id)s, %(kind)s, %(modified_since)s)
ON CONFLICT (tenant_id, kind) DO UPDATE SET modified_since = greatest(w.modified_since, excluded.modified_since);
