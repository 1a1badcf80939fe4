-- The run's work list: the outstanding invoices and credit notes (xero_sync.outstanding_document holds
-- the rule) of the entities this run exports, dated in the run's window.
INSERT INTO xero_sync.run_document (run_id, kind, document_id, billing_entity_id, tenant_id, customer_id)
SELECT re.run_id, o.kind, o.document_id, o.billing_entity_id, o.tenant_id, o.customer_id
FROM xero_sync.run_entity re
JOIN xero_sync.outstanding_document o ON o.billing_entity_id = re.billing_entity_id
WHERE re.run_id = %(run_id)s
  AND re.decision = 'export'
  AND (%(date_from)s::date IS NULL OR o.document_date >= %(date_from)s::date)
  AND o.document_date <= %(date_to)s::date
ON CONFLICT (run_id, kind, document_id) DO NOTHING;
