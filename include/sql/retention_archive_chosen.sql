-- The rows an archive chose (retention_archive_select.sql): how many, and the first and last id, which
-- name the archive file. The first id names it for good: while that row is still in api_log, a file so
-- named is an archive whose deletion never committed (a worker killed between the write and the commit).
SELECT count(*), min(id), max(id) FROM pg_temp.api_log_archive;
