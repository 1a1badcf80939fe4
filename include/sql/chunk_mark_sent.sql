-- The call carrying these documents starts now: until it can no longer land at Xero, they are not
-- looked up or sent again (committed before the call).
UPDATE {export_table} SET last_sent_at = now()
WHERE {id_column} = ANY (%(document_ids)s::bigint[]) AND status = 'sending';
