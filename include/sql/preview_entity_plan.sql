-- What a preview found per billing entity it exports (all of them, or one): the documents that would go
-- (ready and in a chunk; chunk numbers are the organisation's, one API call and one api_log row each), those
-- held back, the credit notes that would wait for their invoice, those selected but past the run's room
-- (deferred), and those of the run's window it had no room to select (Airflow's map limit, the
-- organisation's day at Xero). The last two are left for later runs.
SELECT re.billing_entity_id,
       count(rd.document_id) FILTER (WHERE rd.kind = 'invoice' AND rd.stage = 'ready' AND rd.chunk_no IS NOT NULL),
       count(rd.document_id) FILTER (WHERE rd.kind = 'credit_note' AND rd.stage = 'ready' AND rd.chunk_no IS NOT NULL),
       count(DISTINCT rd.chunk_no) FILTER (WHERE rd.stage = 'ready' AND rd.chunk_no IS NOT NULL),
       count(rd.document_id) FILTER (WHERE rd.stage = 'held'),
       count(rd.document_id) FILTER (WHERE rd.stage = 'waiting'),
       count(rd.document_id) FILTER (WHERE rd.stage = 'deferred'),
       (SELECT count(*) FROM xero_sync.outstanding_document o
        WHERE o.billing_entity_id = re.billing_entity_id
          AND (%(date_from)s::date IS NULL OR o.document_date >= %(date_from)s::date)
          AND o.document_date <= %(date_to)s::date
          AND NOT EXISTS (SELECT 1 FROM xero_sync.run_document s
                          WHERE s.run_id = re.run_id AND s.kind = o.kind AND s.document_id = o.document_id))
FROM xero_sync.run_entity re
LEFT JOIN xero_sync.run_document rd ON rd.run_id = re.run_id AND rd.billing_entity_id = re.billing_entity_id
WHERE re.run_id = %(run_id)s AND re.decision IN ('export', 'stopped')
  AND (%(billing_entity_id)s::bigint IS NULL OR re.billing_entity_id = %(billing_entity_id)s::bigint)
GROUP BY re.run_id, re.billing_entity_id
ORDER BY re.billing_entity_id;
