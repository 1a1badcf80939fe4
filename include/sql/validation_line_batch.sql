SELECT l.invoice_id, l.line_no, l.description, l.quantity, l.unit_amount, round(l.quantity * l.unit_amount, 2),
       l.account_code, l.tax_type
FROM astute.invoice_line l
WHERE l.invoice_id = ANY (%(invoice_ids)s::bigint[])
ORDER BY l.invoice_id, l.line_no;
