-- Before a reset: an exported credit note gone from Xero took its allocation with it (Xero gives the credit back
-- to the invoice). Forget the allocation too, so that the re-created credit note is allocated again.
UPDATE xero_sync.credit_note_export
SET allocation_status = NULL, allocated_amount = NULL, xero_allocation_id = NULL, allocation_detail = NULL,
    allocated_at = NULL, allocation_run_id = NULL
WHERE credit_note_id = ANY (%(document_ids)s::bigint[]) AND status = 'exported';
