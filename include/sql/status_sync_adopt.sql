-- Documents read back before Astute recorded their export (unknown_to_astute while the invoice was `sending`)
-- belong to the Astute document whose export now records their Xero id: the export adopted them. Checked every
-- sync, whether or not Xero changed them since; only rows without an Astute document are looked at.
WITH credit_notes AS (
    UPDATE xero_sync.xero_document d SET astute_id = e.credit_note_id, compared_fields_changed_by = %(sync_no)s
    FROM xero_sync.credit_note_export e
    WHERE d.tenant_id = %(tenant_id)s AND d.kind = 'credit_note' AND d.astute_id IS NULL
      AND e.xero_credit_note_id = d.xero_id AND e.tenant_id = d.tenant_id AND e.status = 'exported'
    RETURNING 1
)
UPDATE xero_sync.xero_document d SET astute_id = e.invoice_id, compared_fields_changed_by = %(sync_no)s
FROM xero_sync.invoice_export e
WHERE d.tenant_id = %(tenant_id)s AND d.kind = 'invoice' AND d.astute_id IS NULL
  AND e.xero_invoice_id = d.xero_id AND e.tenant_id = d.tenant_id AND e.status = 'exported';
