-- The next batch of credit notes in one organisation still to allocate to the invoice they credit. The
-- invoice is in Xero too: exported by us, or history mock-exported at go-live (found by its number).
SELECT x.credit_note_id, c.credit_note_number, x.xero_credit_note_id::text, c.credit_date,
       i.id, i.invoice_number, i.invoice_date, ix.xero_invoice_id::text
FROM xero_sync.credit_note_export x
JOIN astute.credit_note c ON c.id = x.credit_note_id
JOIN astute.invoice i ON i.id = c.invoice_id
JOIN xero_sync.invoice_export ix ON ix.invoice_id = i.id AND ix.status IN ('exported', 'mock_exported')
WHERE x.tenant_id = %(tenant_id)s AND x.status = 'exported'
  AND (x.allocation_status IS NULL OR x.allocation_status = 'sending')
  AND x.credit_note_id > %(after_credit_note_id)s
ORDER BY x.credit_note_id
LIMIT %(batch_size)s;
