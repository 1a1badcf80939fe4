-- Ready documents of one kind and organisation in export order, with an upper bound of their JSON size
-- in bytes: every text byte may become a 6-byte \uXXXX escape, plus a generous fixed overhead per
-- document and line; and the calls that follow it (a credit note that credits an invoice is allocated:
-- one call more from the organisation's day).
SELECT rd.document_id,
       1000 + 6 * (COALESCE(octet_length(d.number), 0) + COALESCE(octet_length(d.reference), 0))
       + COALESCE((SELECT sum(400 + 6 * (octet_length(l.description) + COALESCE(octet_length(l.account_code), 0)
                                         + COALESCE(octet_length(l.tax_type), 0)
                                         + COALESCE(octet_length(l.tracking_name), 0)
                                         + COALESCE(octet_length(l.tracking_option), 0)))
                   FROM xero_sync.astute_document_line l
                   WHERE l.kind = %(kind)s AND l.document_id = rd.document_id), 0) AS estimated_bytes,
       (d.credited_invoice_id IS NOT NULL)::int AS follow_up_calls
FROM xero_sync.run_document rd
JOIN xero_sync.astute_document d ON d.kind = %(kind)s AND d.document_id = rd.document_id
WHERE rd.run_id = %(run_id)s AND rd.tenant_id = %(tenant_id)s AND rd.kind = %(kind)s AND rd.stage = 'ready'
ORDER BY rd.document_id;
