-- Only once the archive file is written and on disk: the rows it holds, and no other.
DELETE FROM xero_sync.api_log a
USING pg_temp.api_log_archive t
WHERE a.id = t.id;
