-- The outcome of a credit note's allocation (status NULL: put back, Xero certainly did nothing).
UPDATE xero_sync.credit_note_export
SET allocation_status = %(status)s,
    allocated_amount = %(amount)s,
    xero_allocation_id = %(allocation_id)s,
    allocation_detail = %(detail)s,
    allocated_at = CASE WHEN %(status)s = 'allocated' THEN now() END,
    allocation_run_id = %(run_id)s,
    updated_at = now()
WHERE credit_note_id = %(credit_note_id)s;
