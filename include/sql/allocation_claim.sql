-- Mark an allocation in flight before the call: a retry then reads Xero before allocating again.
UPDATE xero_sync.credit_note_export
SET allocation_status = 'sending', allocation_run_id = %(run_id)s, updated_at = now()
WHERE credit_note_id = %(credit_note_id)s AND status = 'exported'
  AND (allocation_status IS NULL OR allocation_status = 'sending')
RETURNING credit_note_id;
