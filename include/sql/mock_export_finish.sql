-- A mock export's outcome, from what its run marked (counted, not taken from this attempt: run again after its
-- commit, it marks nothing new and must still say what the run did).
UPDATE xero_sync.export_run r
SET status = CASE WHEN m.marked > 0 THEN 'sent' ELSE 'nothing_to_send' END, finished_at = now(),
    invoices_selected = m.marked
FROM (SELECT count(*) AS marked FROM xero_sync.document_export
      WHERE run_id = %(run_id)s AND status = 'mock_exported') AS m
WHERE r.run_id = %(run_id)s;
