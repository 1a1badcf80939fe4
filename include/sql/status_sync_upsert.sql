-- One page read from Xero into xero_document: matched to Astute's documents by Xero's id. Kept: what Astute
-- exported, and invoices carrying an Astute invoice's link as their Url (ours whichever Xero app sent them; one
-- Astute does not know is drift); the rest (keyed in by hand, other systems') goes no further. A row that did
-- not change is not written (no dead row); every row kept is noted in xero_seen (what drift checks, and what a
-- full read did not find). A row notes the sync that last changed what drift compares with Astute (an incremental
-- sync compares only those, and the documents with a drift open). ON CONFLICT finds each document by
-- xero_document's key (Xero's id) whatever the planner believes of its size (a first read grows it from nothing to
-- a million rows faster than its statistics follow; a join to it was planned as a scan of the organisation's
-- rows, every page).
WITH page AS (
    SELECT p.*, coalesce(ie.invoice_id, ce.credit_note_id) AS astute_id
    FROM xero_page p
    LEFT JOIN xero_sync.invoice_export ie ON p.kind = 'invoice' AND ie.xero_invoice_id = p.xero_id
    LEFT JOIN xero_sync.credit_note_export ce ON p.kind = 'credit_note' AND ce.xero_credit_note_id = p.xero_id
), kept AS (
    SELECT * FROM page WHERE astute_id IS NOT NULL OR (kind = 'invoice' AND carries_astute_url)
), seen AS (
    INSERT INTO xero_seen (kind, xero_id) SELECT kind, xero_id FROM kept
)
INSERT INTO xero_sync.xero_document AS d
    (tenant_id, kind, xero_id, astute_id, number, status, xero_contact_id, contact_name, line_amount_types,
     sub_total, total, amount_due, amount_paid, amount_credited, due_date, fully_paid_on, last_payment_date,
     updated_in_xero, read_at, missing_since, compared_fields_changed_by)
SELECT %(tenant_id)s, kind, xero_id, astute_id, number, status, xero_contact_id, contact_name, line_amount_types,
       sub_total, total, amount_due, amount_paid, amount_credited, due_date, fully_paid_on, last_payment_date,
       updated_in_xero, %(read_at)s, NULL, %(sync_no)s
FROM kept
ON CONFLICT (xero_id) DO UPDATE SET
    astute_id = excluded.astute_id, number = excluded.number, status = excluded.status,
    xero_contact_id = excluded.xero_contact_id, contact_name = excluded.contact_name,
    line_amount_types = excluded.line_amount_types, sub_total = excluded.sub_total, total = excluded.total,
    amount_due = excluded.amount_due, amount_paid = excluded.amount_paid, amount_credited = excluded.amount_credited,
    due_date = excluded.due_date, fully_paid_on = excluded.fully_paid_on,
    last_payment_date = excluded.last_payment_date, updated_in_xero = excluded.updated_in_xero,
    read_at = excluded.read_at, missing_since = NULL,
    -- what drift compares with Astute (migration 016): a payment changes none of it
    compared_fields_changed_by = CASE
        WHEN (d.astute_id, d.status IN ('VOIDED', 'DELETED'), d.xero_contact_id, d.line_amount_types, d.sub_total,
              d.total, d.missing_since IS NULL)
             IS DISTINCT FROM
             (excluded.astute_id, excluded.status IN ('VOIDED', 'DELETED'), excluded.xero_contact_id,
              excluded.line_amount_types, excluded.sub_total, excluded.total, true)
        THEN %(sync_no)s ELSE d.compared_fields_changed_by END
WHERE (d.astute_id, d.number, d.status, d.xero_contact_id, d.contact_name, d.line_amount_types, d.sub_total, d.total,
       d.amount_due, d.amount_paid, d.amount_credited, d.due_date, d.fully_paid_on, d.last_payment_date,
       d.missing_since)
      IS DISTINCT FROM
      (excluded.astute_id, excluded.number, excluded.status, excluded.xero_contact_id, excluded.contact_name,
       excluded.line_amount_types, excluded.sub_total, excluded.total, excluded.amount_due, excluded.amount_paid,
       excluded.amount_credited, excluded.due_date, excluded.fully_paid_on, excluded.last_payment_date, NULL);
