-- The Xero Integration report: what of a billing entity is still to export in a date range, by the
-- same rules as the export (select_sent_invoices.sql), and why each blocked invoice is blocked.
SELECT i.id, i.invoice_number, i.invoice_date, i.pay_run_id, x.status, x.last_error,
       -- the validation errors found by the latest run that looked at the invoice
       (SELECT string_agg(v.message, ' | ' ORDER BY v.line_no NULLS FIRST, v.rule)
        FROM xero_sync.validation_issue v
        WHERE v.invoice_id = i.id
          AND v.run_id = (SELECT max(ri.run_id) FROM xero_sync.run_invoice ri WHERE ri.invoice_id = i.id))
FROM astute.invoice i
JOIN astute.billing_entity e ON e.id = i.billing_entity_id
LEFT JOIN xero_sync.invoice_export x ON x.invoice_id = i.id
WHERE i.billing_entity_id = %(billing_entity_id)s
  AND i.status = 'Sent'
  AND e.xero_tenant_id IS NOT NULL
  AND (%(date_from)s::date IS NULL OR i.invoice_date >= %(date_from)s::date)
  AND (%(date_to)s::date IS NULL OR i.invoice_date <= %(date_to)s::date)
  AND CASE
        WHEN x.invoice_id IS NULL THEN e.xero_go_live_date IS NOT NULL AND i.invoice_date >= e.xero_go_live_date
        ELSE x.status IN ('failed', 'reset', 'sending')
      END
ORDER BY i.invoice_date, i.id;
