-- Ready invoices of one organisation in export order, with an upper bound of their JSON size in bytes:
-- every text byte may become a 6-byte \uXXXX escape, plus a generous fixed overhead per invoice and line.
SELECT ri.invoice_id,
       1000 + 6 * (COALESCE(octet_length(i.invoice_number), 0) + COALESCE(octet_length(i.reference), 0))
       + COALESCE((SELECT sum(400 + 6 * (octet_length(l.description) + COALESCE(octet_length(l.account_code), 0)
                                         + COALESCE(octet_length(l.tax_type), 0)
                                         + COALESCE(octet_length(l.tracking_name), 0)
                                         + COALESCE(octet_length(l.tracking_option), 0)))
                   FROM astute.invoice_line l WHERE l.invoice_id = ri.invoice_id), 0) AS estimated_bytes
FROM xero_sync.run_invoice ri
JOIN astute.invoice i ON i.id = ri.invoice_id
WHERE ri.run_id = %(run_id)s AND ri.tenant_id = %(tenant_id)s AND ri.stage = 'ready'
ORDER BY ri.invoice_id;
