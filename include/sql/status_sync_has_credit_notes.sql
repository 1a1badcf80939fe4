-- Whether Astute has exported credit notes to this organisation (else an incremental read skips them).
SELECT EXISTS (SELECT 1 FROM xero_sync.credit_note_export
               WHERE tenant_id = %(tenant_id)s AND status = 'exported' AND xero_credit_note_id IS NOT NULL);
