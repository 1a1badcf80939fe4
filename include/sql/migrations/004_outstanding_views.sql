-- What is still to export, in one place: the export selects from these views and the Xero
-- Integration report counts from them, so the two can never disagree on the rule.
--   never handled:            only if dated on or after the entity's go-live date (older ones are history)
--   failed / reset / sending: again, whatever their date (reset is how history is sent on purpose;
--                             'sending' is reconciled with Xero before anything is sent)
--   exported / mock_exported: never again
-- Only entities linked to a Xero organisation and live with it export anything.
CREATE OR REPLACE VIEW xero_sync.outstanding_invoice AS
SELECT i.id AS invoice_id, i.billing_entity_id, e.xero_tenant_id AS tenant_id, i.customer_id,
       i.invoice_number, i.invoice_date, i.pay_run_id, x.status AS export_status, x.last_error
FROM astute.invoice i
JOIN astute.billing_entity e ON e.id = i.billing_entity_id
LEFT JOIN xero_sync.invoice_export x ON x.invoice_id = i.id
WHERE i.status = 'Sent'
  AND e.xero_tenant_id IS NOT NULL
  AND e.xero_go_live_date IS NOT NULL
  AND CASE
        WHEN x.invoice_id IS NULL THEN i.invoice_date >= e.xero_go_live_date
        ELSE x.status IN ('failed', 'reset', 'sending')
      END;

CREATE OR REPLACE VIEW xero_sync.outstanding_credit_note AS
SELECT c.id AS credit_note_id, c.billing_entity_id, e.xero_tenant_id AS tenant_id, c.customer_id,
       c.credit_note_number, c.credit_date, x.status AS export_status, x.last_error
FROM astute.credit_note c
JOIN astute.billing_entity e ON e.id = c.billing_entity_id
LEFT JOIN xero_sync.credit_note_export x ON x.credit_note_id = c.id
WHERE c.status = 'Sent'
  AND e.xero_tenant_id IS NOT NULL
  AND e.xero_go_live_date IS NOT NULL
  AND CASE
        WHEN x.credit_note_id IS NULL THEN c.credit_date >= e.xero_go_live_date
        ELSE x.status IN ('failed', 'reset', 'sending')
      END;
