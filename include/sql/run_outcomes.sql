-- Every invoice a run touched and what became of it, for the run summary.
SELECT ri.billing_entity_id, ri.invoice_id, i.invoice_number,
       CASE WHEN ri.stage = 'held' THEN 'held'
            WHEN ri.stage = 'deferred' THEN 'deferred'
            WHEN x.run_id = ri.run_id AND x.status IN ('exported', 'failed', 'sending') THEN x.status
            -- another run (a backfill beside the schedule) took it meanwhile: not this run's to finish
            WHEN x.status IN ('exported', 'sending') THEN 'elsewhere'
            ELSE 'not_sent' END AS outcome,
       CASE WHEN ri.stage = 'held'
                THEN (SELECT string_agg(v.message, ' | ' ORDER BY v.line_no NULLS FIRST, v.rule)
                      FROM xero_sync.validation_issue v
                      WHERE v.run_id = ri.run_id AND v.invoice_id = ri.invoice_id)
            WHEN x.run_id = ri.run_id AND x.status = 'failed' THEN x.last_error END AS reason
FROM xero_sync.run_invoice ri
JOIN astute.invoice i ON i.id = ri.invoice_id
LEFT JOIN xero_sync.invoice_export x ON x.invoice_id = ri.invoice_id
WHERE ri.run_id = %(run_id)s
ORDER BY ri.billing_entity_id, ri.invoice_id;
