-- Every document a run touched and what became of it, for the run summary.
SELECT rd.billing_entity_id, rd.kind, rd.document_id, d.number,
       CASE WHEN rd.stage IN ('held', 'deferred', 'waiting') THEN rd.stage
            WHEN x.run_id = rd.run_id AND x.status IN ('exported', 'failed', 'sending') THEN x.status
            -- another run (a backfill beside the schedule) took it meanwhile: not this run's to finish
            WHEN x.status IN ('exported', 'sending') THEN 'elsewhere'
            ELSE 'not_sent' END AS outcome,
       CASE WHEN rd.stage = 'held'
                THEN (SELECT string_agg(v.message, ' | ' ORDER BY v.line_no NULLS FIRST, v.rule)
                      FROM xero_sync.validation_issue v
                      WHERE v.run_id = rd.run_id AND v.kind = rd.kind AND v.document_id = rd.document_id)
            WHEN rd.stage = 'waiting' THEN w.reason
            WHEN x.run_id = rd.run_id AND x.status = 'failed' THEN x.last_error END AS reason,
       rd.chunk_no
FROM xero_sync.run_document rd
JOIN xero_sync.astute_document d ON d.kind = rd.kind AND d.document_id = rd.document_id
LEFT JOIN xero_sync.document_export x ON x.kind = rd.kind AND x.document_id = rd.document_id
LEFT JOIN xero_sync.credit_note_waiting w ON rd.kind = 'credit_note' AND w.credit_note_id = rd.document_id
WHERE rd.run_id = %(run_id)s
ORDER BY rd.billing_entity_id, rd.kind DESC, rd.document_id;
