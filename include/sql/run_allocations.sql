-- What a run's allocation step did, per billing entity and credit note.
SELECT c.billing_entity_id, x.credit_note_id, c.credit_note_number, x.allocation_status, x.allocated_amount,
       x.allocation_detail
FROM xero_sync.credit_note_export x
JOIN astute.credit_note c ON c.id = x.credit_note_id
WHERE x.allocation_run_id = %(run_id)s
ORDER BY c.billing_entity_id, x.credit_note_id;
