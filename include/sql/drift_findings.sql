-- Where Astute and Xero disagree about one organisation, among the documents this sync read and those with a
-- drift still open (a full reconciliation: all of them, and what Xero no longer holds), against the current state
-- of both sides: an open drift is looked at again whatever changed it (voided in Astute too, adopted by the
-- export, a Contact link removed), and closes (drift_resolve) when it is no longer found. Each with what to do;
-- nothing is changed.
CREATE TEMP TABLE drift_found ON COMMIT DROP AS
WITH open_drift AS MATERIALIZED (
    SELECT kind, xero_id, astute_id, drift FROM xero_sync.drift
    WHERE tenant_id = %(tenant_id)s AND resolved_at IS NULL
), looked_at AS MATERIALIZED (  -- an incremental sync's scope: read now, or with a drift open
    SELECT kind, xero_id FROM xero_seen
    UNION
    SELECT kind, xero_id FROM open_drift WHERE xero_id IS NOT NULL
), scope AS NOT MATERIALIZED (  -- by xero_document's key, never a scan of it, unless full
    SELECT d.* FROM xero_sync.xero_document d
    WHERE %(full)s AND d.tenant_id = %(tenant_id)s AND d.missing_since IS NULL
    UNION ALL
    SELECT d.* FROM looked_at k
    JOIN xero_sync.xero_document d ON d.tenant_id = %(tenant_id)s AND d.kind = k.kind AND d.xero_id = k.xero_id
    WHERE NOT %(full)s AND d.missing_since IS NULL
), labelled AS NOT MATERIALIZED (
    SELECT s.*, CASE s.kind WHEN 'invoice' THEN 'Invoice' ELSE 'Credit note' END
                || ' ' || coalesce(s.number, '(no number)') AS label
    FROM scope s
), astute_total AS NOT MATERIALIZED (
    SELECT 'invoice' AS kind, l.invoice_id AS astute_id, sum(round(l.quantity * l.unit_amount, 2)) AS line_total
    FROM astute.invoice_line l
    WHERE l.invoice_id IN (SELECT astute_id FROM scope WHERE kind = 'invoice')
    GROUP BY l.invoice_id
    UNION ALL
    SELECT 'credit_note', l.credit_note_id, sum(round(l.quantity * l.unit_amount, 2))
    FROM astute.credit_note_line l
    WHERE l.credit_note_id IN (SELECT astute_id FROM scope WHERE kind = 'credit_note')
    GROUP BY l.credit_note_id
), customer AS NOT MATERIALIZED (
    SELECT 'invoice' AS kind, id AS astute_id, customer_id, status FROM astute.invoice
    WHERE id IN (SELECT astute_id FROM scope WHERE kind = 'invoice')
    UNION ALL
    SELECT 'credit_note', id, customer_id, status FROM astute.credit_note
    WHERE id IN (SELECT astute_id FROM scope WHERE kind = 'credit_note')
)
SELECT l.kind, l.astute_id, l.xero_id, l.number,
       CASE l.status WHEN 'VOIDED' THEN 'voided_in_xero' ELSE 'deleted_in_xero' END AS drift,
       l.label || ' is ' || l.status || ' in Xero (changed there '
       || to_char(l.updated_in_xero AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC); Astute records it as '
       || 'exported (astute.' || l.kind || ' id ' || l.astute_id || ').' AS detail,
       'Find out who ' || lower(l.status) || ' it in Xero and why. If it should not be in Xero, void it in Astute '
       || 'too; if it should, re-enter it in Xero, or reset it for export in Astute (xero_reset_for_export) so the '
       || 'next run sends it again.' AS what_to_do
FROM labelled l
LEFT JOIN customer a ON a.kind = l.kind AND a.astute_id = l.astute_id
WHERE l.astute_id IS NOT NULL AND l.status IN ('VOIDED', 'DELETED')
  AND a.status IS DISTINCT FROM 'Void'  -- voided in Astute too: both sides agree
UNION ALL
SELECT l.kind, l.astute_id, l.xero_id, l.number, 'total_differs',
       l.label || ': its lines add up to '
       || CASE WHEN l.line_amount_types = 'Inclusive' THEN l.total || ' in Xero (Total, tax inclusive)'
               ELSE l.sub_total || ' in Xero (SubTotal, before tax)' END
       || ' but to ' || t.line_total || ' in Astute.',
       'Someone edited it in Xero, or its lines were changed in Astute after it was exported. Decide which is '
       || 'right and correct the other (in Xero: edit the invoice or raise a credit note).'
FROM labelled l
JOIN astute_total t ON t.kind = l.kind AND t.astute_id = l.astute_id
WHERE l.status NOT IN ('VOIDED', 'DELETED')
  AND CASE WHEN l.line_amount_types = 'Inclusive' THEN l.total ELSE l.sub_total END <> t.line_total
UNION ALL
SELECT l.kind, l.astute_id, l.xero_id, l.number, 'contact_changed',
       l.label || ' belongs to Contact ' || coalesce(l.contact_name, '?') || ' (' || coalesce(l.xero_contact_id::text, '?')
       || ') in Xero, not to ' || cl.xero_contact_name || ' (' || cl.xero_contact_id || '), the Contact Astute '
       || 'customer ' || c.customer_id || ' is linked to.',
       'The Contact was merged in Xero, or the document moved to another Contact. If that is right, remove the '
       || 'customer''s link (xero_remove_contact_link, customer ' || c.customer_id || ') so the next export links '
       || 'the Contact it belongs to now; if not, move it back in Xero.'
FROM labelled l
JOIN customer c ON c.kind = l.kind AND c.astute_id = l.astute_id
JOIN xero_sync.contact_link cl ON cl.customer_id = c.customer_id AND cl.tenant_id = l.tenant_id
WHERE l.status NOT IN ('VOIDED', 'DELETED') AND l.xero_contact_id IS DISTINCT FROM cl.xero_contact_id
UNION ALL
SELECT l.kind, NULL, l.xero_id, l.number, 'unknown_to_astute',
       l.label || ' (' || l.status || ', ' || coalesce(l.contact_name, '?') || ', ' || coalesce(l.total::text, '?')
       || ') carries an Astute invoice''s link in Xero, and Astute records no document as exported to it.',
       'It may be a duplicate (an export whose result was never recorded), or come from another Astute system '
       || 'whose links look like ours (ASTUTE_INVOICE_URL). Check it in Xero against the Astute invoice its link '
       || 'names; void it there if it is a duplicate.'
FROM labelled l
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
  AND (%(full)s OR e.invoice_id IN (SELECT astute_id FROM open_drift WHERE kind = 'invoice' AND drift = 'missing_in_xero'))
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
  AND (%(full)s OR e.credit_note_id IN (SELECT astute_id FROM open_drift
                                        WHERE kind = 'credit_note' AND drift = 'missing_in_xero'))
  AND NOT EXISTS (SELECT 1 FROM xero_seen s WHERE s.kind = 'credit_note' AND s.xero_id = e.xero_credit_note_id);
