-- The rows an archive takes: every call started before the archive date (midnight UTC, passed in).
INSERT INTO pg_temp.api_log_archive (id)
SELECT id FROM xero_sync.api_log WHERE started_at < %(before)s;
