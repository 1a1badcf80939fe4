-- The run's work list: the outstanding invoices and credit notes (xero_sync.outstanding_document holds
-- the rule) of the entities this run exports, dated in the run's window; per organisation only as many
-- as the run can send (%(tenants)s / %(capacities)s: its share of Airflow's map limit and its day's
-- budget, in documents; an organisation not listed has no cap), oldest first, invoices before credit
-- notes of the same day. Documents held back by an earlier validation are re-checked on top, so that
-- documents waiting for a fix never take the room of those that can go.
INSERT INTO xero_sync.run_document (run_id, kind, document_id, billing_entity_id, tenant_id, customer_id)
SELECT ranked.run_id, ranked.kind, ranked.document_id, ranked.billing_entity_id, ranked.tenant_id, ranked.customer_id
FROM (
    SELECT re.run_id, o.kind, o.document_id, o.billing_entity_id, o.tenant_id, o.customer_id,
           h.document_id IS NOT NULL AS held_before,
           row_number() OVER (PARTITION BY o.tenant_id
                              ORDER BY h.document_id IS NOT NULL, o.document_date, o.kind <> 'invoice', o.document_id)
               AS position
    FROM xero_sync.run_entity re
    JOIN xero_sync.outstanding_document o ON o.billing_entity_id = re.billing_entity_id
    LEFT JOIN xero_sync.document_hold h ON h.kind = o.kind AND h.document_id = o.document_id
    WHERE re.run_id = %(run_id)s
      AND re.decision = 'export'
      AND (%(date_from)s::date IS NULL OR o.document_date >= %(date_from)s::date)
      AND o.document_date <= %(date_to)s::date
) ranked
LEFT JOIN unnest(%(tenants)s::text[], %(capacities)s::bigint[]) AS capacity (tenant_id, documents)
       ON capacity.tenant_id = ranked.tenant_id
WHERE ranked.held_before OR capacity.documents IS NULL OR ranked.position <= capacity.documents
ON CONFLICT (run_id, kind, document_id) DO NOTHING;
