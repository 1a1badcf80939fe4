-- The Xero Integration report: each validation error of a billing entity's outstanding documents in a date
-- range, one row per error (its line and rule), from the latest run that looked at the document (as
-- report_outstanding), with the document's customer for the errors that are about its Xero Contact.
SELECT o.kind, o.document_id, o.customer_id, v.line_no, v.rule, v.message
FROM xero_sync.outstanding_document o
JOIN xero_sync.validation_issue v ON v.kind = o.kind AND v.document_id = o.document_id
WHERE o.billing_entity_id = %(billing_entity_id)s
  AND (%(date_from)s::date IS NULL OR o.document_date >= %(date_from)s::date)
  AND (%(date_to)s::date IS NULL OR o.document_date <= %(date_to)s::date)
  AND v.run_id = (SELECT max(rd.run_id) FROM xero_sync.run_document rd
                  WHERE rd.kind = o.kind AND rd.document_id = o.document_id)
ORDER BY o.kind, o.document_id, v.line_no NULLS FIRST, v.rule;
