-- How long (seconds, on the database's clock, which stamped last_sent_at) until every earlier call that carried
-- one of these documents can no longer land at Xero: its start plus the late-commit window. NULL or <= 0: none.
SELECT extract(epoch FROM max(last_sent_at) + %(window)s::interval - now())::float8
FROM {export_table}
WHERE {id_column} = ANY (%(document_ids)s::bigint[]) AND status = 'sending' AND last_sent_at IS NOT NULL;
