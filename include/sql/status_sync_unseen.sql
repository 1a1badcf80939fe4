-- After a full read's pages: what Astute exported to this organisation, or the read back keeps, that no page
-- brought, kept in xero_unseen (the only candidates status_sync_mark_missing and drift_findings look at for what
-- Xero no longer holds). Each is asked for by its Xero id before it is called missing (a page can miss a document
-- that moved while the pages were read); normally none. One anti-join of every candidate against what the pages
-- brought (a million of them hashed once, not once per source).
WITH candidate AS (
    SELECT 'invoice' AS kind, e.xero_invoice_id AS xero_id
    FROM xero_sync.invoice_export e
    WHERE e.tenant_id = %(tenant_id)s AND e.status = 'exported' AND e.xero_invoice_id IS NOT NULL
    UNION ALL
    SELECT 'credit_note', e.xero_credit_note_id
    FROM xero_sync.credit_note_export e
    WHERE e.tenant_id = %(tenant_id)s AND e.status = 'exported' AND e.xero_credit_note_id IS NOT NULL
    UNION ALL
    SELECT d.kind, d.xero_id
    FROM xero_sync.xero_document d
    WHERE d.tenant_id = %(tenant_id)s AND d.missing_since IS NULL
), unseen AS (
    SELECT DISTINCT c.kind, c.xero_id
    FROM candidate c
    WHERE NOT EXISTS (SELECT 1 FROM xero_seen s WHERE s.kind = c.kind AND s.xero_id = c.xero_id)
), noted AS (
    INSERT INTO xero_unseen (kind, xero_id) SELECT kind, xero_id FROM unseen
)
SELECT kind, xero_id::text FROM unseen ORDER BY 1, 2;
