-- Hold back a customer's invoices and credit notes in one organisation, with the reason, for this run.
WITH held AS (
    UPDATE xero_sync.run_document SET stage = 'held'
    WHERE run_id = %(run_id)s AND tenant_id = %(tenant_id)s AND customer_id = %(customer_id)s AND stage = 'ready'
    RETURNING kind, document_id
)
INSERT INTO xero_sync.validation_issue (run_id, kind, document_id, line_no, rule, message)
SELECT %(run_id)s, kind, document_id, NULL, %(rule)s, %(message)s FROM held;
