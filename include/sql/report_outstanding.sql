-- The Xero Integration report: a billing entity's outstanding invoices and credit notes in a date range
-- (the same view the export selects from), and why each blocked one is blocked.
SELECT o.kind, o.document_id, o.number, o.document_date, i.pay_run_id, o.export_status, o.last_error,
       -- the validation errors found by the latest run that looked at the document
       (SELECT string_agg(v.message, ' | ' ORDER BY v.line_no NULLS FIRST, v.rule)
        FROM xero_sync.validation_issue v
        WHERE v.kind = o.kind AND v.document_id = o.document_id
          AND v.run_id = (SELECT max(rd.run_id) FROM xero_sync.run_document rd
                          WHERE rd.kind = o.kind AND rd.document_id = o.document_id)),
       w.reason
FROM xero_sync.outstanding_document o
LEFT JOIN astute.invoice i ON o.kind = 'invoice' AND i.id = o.document_id
LEFT JOIN xero_sync.credit_note_waiting w ON o.kind = 'credit_note' AND w.credit_note_id = o.document_id
WHERE o.billing_entity_id = %(billing_entity_id)s
  AND (%(date_from)s::date IS NULL OR o.document_date >= %(date_from)s::date)
  AND (%(date_to)s::date IS NULL OR o.document_date <= %(date_to)s::date)
ORDER BY o.document_date, o.kind DESC, o.document_id;
