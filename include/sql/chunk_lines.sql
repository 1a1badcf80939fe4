SELECT l.document_id, l.line_no, l.description, l.quantity, l.unit_amount, l.account_code, l.tax_type,
       l.tracking_name, l.tracking_option
FROM xero_sync.run_document rd
JOIN xero_sync.astute_document_line l ON l.kind = %(kind)s AND l.document_id = rd.document_id
WHERE rd.run_id = %(run_id)s AND rd.tenant_id = %(tenant_id)s AND rd.kind = %(kind)s AND rd.chunk_no = %(chunk_no)s
  AND rd.stage = 'ready'
ORDER BY l.document_id, l.line_no;
