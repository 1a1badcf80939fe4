-- The run's work list: Sent invoices of exporting entities, in the date window, not yet in Xero.
--   never handled:       only if dated on or after the entity's go-live date (older ones are history)
--   failed / reset:      again, whatever their date (reset is how history is sent on purpose)
--   sending:             a call whose outcome was never recorded: reconciled with Xero before anything is sent
--   exported / mock_exported: never again
INSERT INTO xero_sync.run_invoice (run_id, invoice_id, billing_entity_id, tenant_id, customer_id)
SELECT re.run_id, i.id, i.billing_entity_id, re.tenant_id, i.customer_id
FROM xero_sync.run_entity re
JOIN astute.billing_entity e ON e.id = re.billing_entity_id
JOIN astute.invoice i ON i.billing_entity_id = re.billing_entity_id
LEFT JOIN xero_sync.invoice_export x ON x.invoice_id = i.id
WHERE re.run_id = %(run_id)s
  AND re.decision = 'export'
  AND i.status = 'Sent'
  AND (%(date_from)s::date IS NULL OR i.invoice_date >= %(date_from)s::date)
  AND i.invoice_date <= %(date_to)s::date
  AND CASE
        WHEN x.invoice_id IS NULL THEN i.invoice_date >= e.xero_go_live_date
        ELSE x.status IN ('failed', 'reset', 'sending')
      END
ON CONFLICT (run_id, invoice_id) DO NOTHING;
