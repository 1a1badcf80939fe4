-- The work tables of a run are derived from Astute and the export flags, so a re-run rebuilds them.
WITH issues AS (DELETE FROM xero_sync.validation_issue WHERE run_id = %(run_id)s),
     chunks AS (DELETE FROM xero_sync.export_chunk WHERE run_id = %(run_id)s),
     documents AS (DELETE FROM xero_sync.run_document WHERE run_id = %(run_id)s),
     contacts AS (DELETE FROM xero_sync.preview_contact WHERE run_id = %(run_id)s)
DELETE FROM xero_sync.run_entity WHERE run_id = %(run_id)s;
