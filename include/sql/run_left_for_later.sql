-- What each organisation of a finished run left for later for lack of room: the documents it selected
-- but had no room to send (deferred: past Airflow's map limit or the organisation's day, or its
-- organisation stopped), and those of the run's window it had no room to select (not held back before).
-- Not counted: what the run tried and Xero refused (failed), what waits for its invoice (waiting) and what
-- validation held back: a run that follows at once would only repeat them, so they wait for a fix or the
-- daily schedule. The preview's "left for later" (preview_entity_plan.sql) is the same two counts.
WITH entity AS (
    SELECT billing_entity_id, tenant_id FROM xero_sync.run_entity
    WHERE run_id = %(run_id)s AND decision IN ('export', 'stopped')
), left_for_later AS (
    SELECT rd.tenant_id FROM xero_sync.run_document rd
    WHERE rd.run_id = %(run_id)s AND rd.stage = 'deferred'
    UNION ALL
    SELECT e.tenant_id
    FROM entity e
    JOIN xero_sync.outstanding_document o ON o.billing_entity_id = e.billing_entity_id
    WHERE (%(date_from)s::date IS NULL OR o.document_date >= %(date_from)s::date)
      AND o.document_date <= %(date_to)s::date
      AND NOT EXISTS (SELECT 1 FROM xero_sync.run_document s
                      WHERE s.run_id = %(run_id)s AND s.kind = o.kind AND s.document_id = o.document_id)
      AND NOT EXISTS (SELECT 1 FROM xero_sync.document_hold h WHERE h.kind = o.kind AND h.document_id = o.document_id)
)
SELECT tenant_id, count(*) FROM left_for_later GROUP BY tenant_id;
