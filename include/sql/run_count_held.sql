-- The run's documents held back by validation, counted from the work list: a validation run again after its
-- commit (a retry) checks nothing new, and must not count fewer.
UPDATE xero_sync.export_run
SET documents_held = (SELECT count(*) FROM xero_sync.run_document WHERE run_id = %(run_id)s AND stage = 'held')
WHERE run_id = %(run_id)s;
