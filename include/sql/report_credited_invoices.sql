-- The invoice each of these credit notes credits (the report links a waiting credit note to its invoice).
SELECT c.id, c.invoice_id
FROM astute.credit_note c
WHERE c.id = ANY (%(credit_note_ids)s::bigint[]) AND c.invoice_id IS NOT NULL;
