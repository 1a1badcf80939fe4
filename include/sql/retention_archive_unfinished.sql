-- Of the first ids that name archive files in the archive location, those still in api_log: the files of
-- archives whose deletion never committed. Every row such a file holds is still in api_log (the deletion
-- is one statement, committed with nothing else), so the file is only a copy, replaced by this archive.
SELECT id FROM xero_sync.api_log WHERE id = ANY(%(first_ids)s);
