-- The start of an api_log archive's transaction.
-- One archive at a time (the key is "APILOGAR" in ASCII, negated: invoices are locked by their positive
-- ids in the same key space): a second one waits here, then sees only the rows the first one left.
SELECT pg_advisory_xact_lock(-4706342202698580306);
-- The file is read by people and other tools long after: timestamps in UTC and ISO 8601, whatever the
-- server's or the role's settings.
SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO, YMD';
-- The ids of the rows being archived, held by the server (not the worker), so that the file and the
-- DELETE cover exactly the same rows even while new calls are logged.
CREATE TEMP TABLE api_log_archive (id bigint PRIMARY KEY) ON COMMIT DROP;
