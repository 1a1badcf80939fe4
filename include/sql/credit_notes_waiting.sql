-- Credit notes whose invoice is not in Xero wait for it: a credit note goes in the run that exports
-- its invoice, so that it can be allocated there. At planning (chunk_no NULL) a credit note waits when
-- its invoice is neither in Xero nor ready in this run; before its chunk is sent (chunk_no given),
-- when its invoice did not reach Xero after all (it failed, or its chunk did not run).
UPDATE xero_sync.run_document rd
SET stage = 'waiting'
FROM astute.credit_note c
LEFT JOIN xero_sync.invoice_export x ON x.invoice_id = c.invoice_id
WHERE rd.run_id = %(run_id)s AND rd.kind = 'credit_note' AND rd.stage = 'ready' AND c.id = rd.document_id
  AND c.invoice_id IS NOT NULL
  AND COALESCE(x.status, 'none') NOT IN ('exported', 'mock_exported')
  AND CASE WHEN %(chunk_no)s::int IS NULL
           THEN NOT EXISTS (SELECT 1 FROM xero_sync.run_document ri
                            WHERE ri.run_id = rd.run_id AND ri.kind = 'invoice' AND ri.document_id = c.invoice_id
                              AND ri.stage = 'ready')
           ELSE rd.tenant_id = %(tenant_id)s AND rd.chunk_no = %(chunk_no)s END
RETURNING rd.document_id;
