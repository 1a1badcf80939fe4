SELECT l.document_id, l.line_no, l.description, l.quantity, l.unit_amount, round(l.quantity * l.unit_amount, 2),
       l.account_code, l.tax_type, l.tracking_name, l.tracking_option
FROM xero_sync.astute_document_line l
WHERE l.kind = %(kind)s AND l.document_id = ANY (%(document_ids)s::bigint[])
ORDER BY l.document_id, l.line_no;
