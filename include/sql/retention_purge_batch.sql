-- Retention: the work rows of up to %(batch_size)s runs that finished before the cutoff, in one statement
-- (so one transaction): their work list, validation issues and chunks. A run's work is derived from
-- Astute and the export flags and only explains that run, so once it is old nothing needs it; a run
-- started again (a cleared first task) is 'running' and rebuilds its own work (run_reset_work).
-- Kept: export_run and run_entity (the run's summary: the report's recent runs read them), the export
-- flags (invoice_export, credit_note_export: what went, never purged) and api_log (the audit trail).
-- Only runs that still hold work rows are picked, so a daily purge does not walk years of purged runs;
-- run_id > after_run_id moves on through the runs whatever happens, so the loop always ends.
WITH batch AS (
    SELECT r.run_id
    FROM xero_sync.export_run r
    WHERE r.status <> 'running'
      AND r.finished_at < %(cutoff)s
      AND r.run_id > %(after_run_id)s
      AND (EXISTS (SELECT 1 FROM xero_sync.run_document d WHERE d.run_id = r.run_id)
           OR EXISTS (SELECT 1 FROM xero_sync.validation_issue v WHERE v.run_id = r.run_id)
           OR EXISTS (SELECT 1 FROM xero_sync.export_chunk c WHERE c.run_id = r.run_id))
    ORDER BY r.run_id
    LIMIT %(batch_size)s
), documents AS (
    DELETE FROM xero_sync.run_document d USING batch b WHERE d.run_id = b.run_id RETURNING 1
), issues AS (
    DELETE FROM xero_sync.validation_issue v USING batch b WHERE v.run_id = b.run_id RETURNING 1
), chunks AS (
    DELETE FROM xero_sync.export_chunk c USING batch b WHERE c.run_id = b.run_id RETURNING 1
)
SELECT (SELECT count(*) FROM batch),
       (SELECT max(run_id) FROM batch),
       (SELECT count(*) FROM documents),
       (SELECT count(*) FROM issues),
       (SELECT count(*) FROM chunks);
