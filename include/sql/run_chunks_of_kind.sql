-- How many chunks of one kind a run planned.
SELECT count(*) FROM xero_sync.export_chunk WHERE run_id = %(run_id)s AND kind = %(kind)s;
