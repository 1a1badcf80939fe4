-- Where Astute and Xero disagree about one organisation, against the current state of both sides. An incremental
-- sync looks at the documents it read whose side of the comparison Xero changed since the last sync to finish
-- (status_sync_upsert notes it; a payment changes none of it) and at those with a drift still open, whatever
-- changed it (voided in Astute too, adopted by the export, a Contact link removed); a full reconciliation at every
-- document, and at what Xero no longer holds. An open drift closes (drift_resolve) when it is no longer found. Each
-- with what to do; nothing is changed. Astute's own later edits of an exported document are found by the full
-- reconciliation.
-- One pass: each document in scope is joined once to Astute's side of it (its status, customer, line total, the
-- customer's Contact link), and only those that disagree go on to be described.
CREATE TEMP TABLE drift_found ON COMMIT DROP AS
WITH open_drift AS MATERIALIZED (
    SELECT kind, xero_id, astute_id, drift FROM xero_sync.drift
    WHERE tenant_id = %(tenant_id)s AND resolved_at IS NULL
), looked_at AS MATERIALIZED (  -- an incremental sync's scope: read now, or with a drift open
    SELECT kind, xero_id, bool_or(open) AS open
    FROM (SELECT kind, xero_id, false AS open FROM xero_seen WHERE NOT %(full)s
          UNION ALL
          SELECT kind, xero_id, true FROM open_drift WHERE NOT %(full)s AND xero_id IS NOT NULL) AS k
    GROUP BY kind, xero_id
), scope AS NOT MATERIALIZED (  -- inlined where used, so planned from xero_document's statistics: a full
    -- reconciliation's scans and hash joins, or an incremental one's look-ups by key
    SELECT d.kind, d.xero_id, d.astute_id, d.number, d.status, d.xero_contact_id, d.contact_name, d.line_amount_types,
           d.sub_total, d.total, d.updated_in_xero
    FROM xero_sync.xero_document d
    WHERE %(full)s AND d.tenant_id = %(tenant_id)s AND d.missing_since IS NULL
    UNION ALL
    SELECT d.kind, d.xero_id, d.astute_id, d.number, d.status, d.xero_contact_id, d.contact_name, d.line_amount_types,
           d.sub_total, d.total, d.updated_in_xero
    FROM looked_at k
    JOIN xero_sync.xero_document d ON d.tenant_id = %(tenant_id)s AND d.kind = k.kind AND d.xero_id = k.xero_id
    WHERE d.missing_since IS NULL
      -- of what was read, what Xero changed that drift compares since the last sync to finish (a payment is not)
      AND (k.open OR d.compared_fields_changed_by > %(last_success_no)s)
), invoice_total AS (
    SELECT l.invoice_id, sum(round(l.quantity * l.unit_amount, 2)) AS line_total
    FROM astute.invoice_line l
    WHERE l.invoice_id IN (SELECT astute_id FROM scope WHERE kind = 'invoice')
    GROUP BY l.invoice_id
), credit_note_total AS (
    SELECT l.credit_note_id, sum(round(l.quantity * l.unit_amount, 2)) AS line_total
    FROM astute.credit_note_line l
    WHERE l.credit_note_id IN (SELECT astute_id FROM scope WHERE kind = 'credit_note')
    GROUP BY l.credit_note_id
), compared AS (
    SELECT s.*, CASE s.kind WHEN 'invoice' THEN 'Invoice' ELSE 'Credit note' END
                || ' ' || coalesce(s.number, '(no number)') AS label,
           coalesce(i.status, c.status) AS astute_status,
           coalesce(i.customer_id, c.customer_id) AS customer_id,
           coalesce(ti.line_total, tc.line_total) AS line_total,
           cl.customer_id IS NOT NULL AS linked, cl.xero_contact_id AS linked_contact_id,
           cl.xero_contact_name AS linked_contact_name
    FROM scope s
    LEFT JOIN astute.invoice i ON s.kind = 'invoice' AND i.id = s.astute_id
    LEFT JOIN astute.credit_note c ON s.kind = 'credit_note' AND c.id = s.astute_id
    LEFT JOIN invoice_total ti ON s.kind = 'invoice' AND ti.invoice_id = s.astute_id
    LEFT JOIN credit_note_total tc ON s.kind = 'credit_note' AND tc.credit_note_id = s.astute_id
    LEFT JOIN xero_sync.contact_link cl
           ON cl.customer_id = coalesce(i.customer_id, c.customer_id) AND cl.tenant_id = %(tenant_id)s
), missing AS MATERIALIZED (
    -- What may be missing: after a full reconciliation, what Astute exported among what its pages did not bring
    -- (xero_unseen, status_sync_unseen: the confirmation by id has looked for it since); after an incremental
    -- sync, the open missing_in_xero drifts only. Each then missing if it was not read after all.
    SELECT 'invoice' AS kind, e.invoice_id AS astute_id
    FROM xero_unseen u JOIN xero_sync.invoice_export e ON e.xero_invoice_id = u.xero_id
    WHERE %(full)s AND u.kind = 'invoice'
    UNION ALL
    SELECT 'credit_note', e.credit_note_id
    FROM xero_unseen u JOIN xero_sync.credit_note_export e ON e.xero_credit_note_id = u.xero_id
    WHERE %(full)s AND u.kind = 'credit_note'
    UNION ALL
    SELECT kind, astute_id FROM open_drift WHERE NOT %(full)s AND drift = 'missing_in_xero'
), disagreeing AS MATERIALIZED (  -- normally none
    SELECT * FROM compared l
    WHERE CASE WHEN l.status IN ('VOIDED', 'DELETED')
               THEN l.astute_id IS NOT NULL AND l.astute_status IS DISTINCT FROM 'Void'  -- voided in both: agreed
               ELSE CASE WHEN l.line_amount_types = 'Inclusive' THEN l.total ELSE l.sub_total END <> l.line_total
                    OR (l.linked AND l.xero_contact_id IS DISTINCT FROM l.linked_contact_id)
                    OR (l.astute_id IS NULL AND l.kind = 'invoice') END
)
SELECT l.kind, l.astute_id, l.xero_id, l.number,
       CASE l.status WHEN 'VOIDED' THEN 'voided_in_xero' ELSE 'deleted_in_xero' END AS drift,
       l.label || ' is ' || l.status || ' in Xero (changed there '
       || to_char(l.updated_in_xero AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC); Astute records it as '
       || 'exported (astute.' || l.kind || ' id ' || l.astute_id || ').' AS detail,
       'Find out who ' || lower(l.status) || ' it in Xero and why. If it should not be in Xero, void it in Astute '
       || 'too; if it should, re-enter it in Xero, or reset it for export in Astute (xero_reset_for_export) so the '
       || 'next run sends it again.' AS what_to_do
FROM disagreeing l
WHERE l.astute_id IS NOT NULL AND l.status IN ('VOIDED', 'DELETED')
  AND l.astute_status IS DISTINCT FROM 'Void'  -- voided in Astute too: both sides agree
UNION ALL
SELECT l.kind, l.astute_id, l.xero_id, l.number, 'total_differs',
       l.label || ': its lines add up to '
       || CASE WHEN l.line_amount_types = 'Inclusive' THEN l.total || ' in Xero (Total, tax inclusive)'
               ELSE l.sub_total || ' in Xero (SubTotal, before tax)' END
       || ' but to ' || l.line_total || ' in Astute.',
       'Someone edited it in Xero, or its lines were changed in Astute after it was exported. Decide which is '
       || 'right and correct the other (in Xero: edit the invoice or raise a credit note).'
FROM disagreeing l
WHERE l.status NOT IN ('VOIDED', 'DELETED')
  AND CASE WHEN l.line_amount_types = 'Inclusive' THEN l.total ELSE l.sub_total END <> l.line_total
UNION ALL
SELECT l.kind, l.astute_id, l.xero_id, l.number, 'contact_changed',
       l.label || ' belongs to Contact ' || coalesce(l.contact_name, '?') || ' (' || coalesce(l.xero_contact_id::text, '?')
       || ') in Xero, not to ' || l.linked_contact_name || ' (' || l.linked_contact_id || '), the Contact Astute '
       || 'customer ' || l.customer_id || ' is linked to.',
       'The Contact was merged in Xero, or the document moved to another Contact. If that is right, remove the '
       || 'customer''s link (xero_remove_contact_link, customer ' || l.customer_id || ') so the next export links '
       || 'the Contact it belongs to now; if not, move it back in Xero.'
FROM disagreeing l
WHERE l.status NOT IN ('VOIDED', 'DELETED') AND l.linked AND l.xero_contact_id IS DISTINCT FROM l.linked_contact_id
UNION ALL
SELECT l.kind, NULL, l.xero_id, l.number, 'unknown_to_astute',
       l.label || ' (' || l.status || ', ' || coalesce(l.contact_name, '?') || ', ' || coalesce(l.total::text, '?')
       || ') carries an Astute invoice''s link in Xero, and Astute records no document as exported to it.',
       'It may be a duplicate (an export whose result was never recorded), or come from another Astute system '
       || 'whose links look like ours (ASTUTE_INVOICE_URL). Check it in Xero against the Astute invoice its link '
       || 'names; void it there if it is a duplicate.'
FROM disagreeing l
WHERE l.astute_id IS NULL AND l.kind = 'invoice' AND l.status NOT IN ('VOIDED', 'DELETED')
UNION ALL
SELECT 'invoice', e.invoice_id, e.xero_invoice_id, i.invoice_number, 'missing_in_xero',
       'Invoice ' || coalesce(i.invoice_number, '(no number)') || ' (astute.invoice id ' || e.invoice_id
       || ') is recorded as exported (Xero id ' || e.xero_invoice_id || ') but Xero no longer holds it.',
       'Look for it in Xero (by its number, or its Go to Astute link) and check the organisation (was it restored '
       || 'from a backup?). If the invoice must be there and is not, reset it for export (xero_reset_for_export) so '
       || 'the next run sends it again.'
FROM xero_sync.invoice_export e
JOIN astute.invoice i ON i.id = e.invoice_id
WHERE e.tenant_id = %(tenant_id)s AND e.status = 'exported'
  AND e.invoice_id IN (SELECT astute_id FROM missing WHERE kind = 'invoice')
  AND NOT EXISTS (SELECT 1 FROM xero_seen s WHERE s.kind = 'invoice' AND s.xero_id = e.xero_invoice_id)
UNION ALL
SELECT 'credit_note', e.credit_note_id, e.xero_credit_note_id, c.credit_note_number, 'missing_in_xero',
       'Credit note ' || coalesce(c.credit_note_number, '(no number)') || ' (astute.credit_note id '
       || e.credit_note_id || ') is recorded as exported (Xero id ' || e.xero_credit_note_id
       || ') but Xero no longer holds it.',
       'Check the organisation in Xero (was it restored from a backup?). If the credit note must be there, reset it '
       || 'for export (xero_reset_for_export) so the next run sends it again.'
FROM xero_sync.credit_note_export e
JOIN astute.credit_note c ON c.id = e.credit_note_id
WHERE e.tenant_id = %(tenant_id)s AND e.status = 'exported'
  AND e.credit_note_id IN (SELECT astute_id FROM missing WHERE kind = 'credit_note')
  AND NOT EXISTS (SELECT 1 FROM xero_seen s WHERE s.kind = 'credit_note' AND s.xero_id = e.xero_credit_note_id);
