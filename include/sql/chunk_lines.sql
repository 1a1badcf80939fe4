SELECT l.invoice_id, l.line_no, l.description, l.quantity, l.unit_amount, l.account_code, l.tax_type,
       l.tracking_name, l.tracking_option
FROM xero_sync.run_invoice ri
JOIN astute.invoice_line l ON l.invoice_id = ri.invoice_id
WHERE ri.run_id = %(run_id)s AND ri.tenant_id = %(tenant_id)s AND ri.chunk_no = %(chunk_no)s
ORDER BY l.invoice_id, l.line_no;
