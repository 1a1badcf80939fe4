-- The work tables of a run are derived from Astute and invoice_export, so a re-run rebuilds them.
WITH issues AS (DELETE FROM xero_sync.validation_issue WHERE run_id = %(run_id)s),
     chunks AS (DELETE FROM xero_sync.export_chunk WHERE run_id = %(run_id)s),
     invoices AS (DELETE FROM xero_sync.run_invoice WHERE run_id = %(run_id)s)
DELETE FROM xero_sync.run_entity WHERE run_id = %(run_id)s;
