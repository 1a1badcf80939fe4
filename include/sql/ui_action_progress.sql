-- A run's progress by organisation, for the page's banner: its chunks (one API call each), how many are done,
-- and the documents sent of those planned. The organisation is named by the billing entities exporting to it.
SELECT c.tenant_id,
       (SELECT string_agg(e.name, ', ' ORDER BY e.id) FROM astute.billing_entity e
        WHERE e.xero_tenant_id = c.tenant_id) AS organisation,
       count(*) AS chunks,
       count(*) FILTER (WHERE c.status <> 'planned') AS chunks_done,
       COALESCE(sum(c.document_count), 0) AS documents_planned,
       (SELECT count(*) FROM xero_sync.document_export x
        WHERE x.run_id = %(run_id)s AND x.tenant_id = c.tenant_id AND x.status = 'exported') AS documents_sent
FROM xero_sync.export_chunk c
WHERE c.run_id = %(run_id)s
GROUP BY c.tenant_id
ORDER BY organisation NULLS LAST, c.tenant_id;
