-- The Xero Integration report: a billing entity's outstanding invoices in a date range (the same
-- view the export selects from), and why each blocked one is blocked.
SELECT o.invoice_id, o.invoice_number, o.invoice_date, o.pay_run_id, o.export_status, o.last_error,
       -- the validation errors found by the latest run that looked at the invoice
       (SELECT string_agg(v.message, ' | ' ORDER BY v.line_no NULLS FIRST, v.rule)
        FROM xero_sync.validation_issue v
        WHERE v.invoice_id = o.invoice_id
          AND v.run_id = (SELECT max(ri.run_id) FROM xero_sync.run_invoice ri WHERE ri.invoice_id = o.invoice_id))
FROM xero_sync.outstanding_invoice o
WHERE o.billing_entity_id = %(billing_entity_id)s
  AND (%(date_from)s::date IS NULL OR o.invoice_date >= %(date_from)s::date)
  AND (%(date_to)s::date IS NULL OR o.invoice_date <= %(date_to)s::date)
ORDER BY o.invoice_date, o.invoice_id;
