-- One page read from Xero into xero_document: matched to Astute's documents by Xero's id. Kept: what Astute
-- exported, and invoices carrying an Astute invoice's link as their Url (ours whichever Xero app sent them; one
-- Astute does not know is drift); the rest (keyed in by hand, other systems') goes no further. Every row kept is
-- noted in xero_seen (what drift checks, and what a full read did not find). Each kept row is looked up once in
-- xero_document: one held and the same is left alone (a re-read writes nothing, leaves no dead row, takes no row
-- lock); one held and different is updated (the difference checked again as it updates, should another session
-- have changed it meanwhile); one not held is inserted. Returns the rows written.
WITH kept AS MATERIALIZED (
    SELECT p.*, coalesce(ie.invoice_id, ce.credit_note_id) AS astute_id
    FROM xero_page p
    LEFT JOIN xero_sync.invoice_export ie ON p.kind = 'invoice' AND ie.xero_invoice_id = p.xero_id
    LEFT JOIN xero_sync.credit_note_export ce ON p.kind = 'credit_note' AND ce.xero_credit_note_id = p.xero_id
    WHERE coalesce(ie.invoice_id, ce.credit_note_id) IS NOT NULL OR (p.kind = 'invoice' AND p.carries_astute_url)
), seen AS (
    INSERT INTO xero_seen (kind, xero_id) SELECT kind, xero_id FROM kept
), compared AS MATERIALIZED (
    SELECT k.*, d.xero_id IS NOT NULL AS held,
           (d.astute_id, d.number, d.status, d.xero_contact_id, d.contact_name, d.line_amount_types, d.sub_total,
            d.total, d.amount_due, d.amount_paid, d.amount_credited, d.due_date, d.fully_paid_on, d.last_payment_date,
            d.missing_since)
           IS DISTINCT FROM
           (k.astute_id, k.number, k.status, k.xero_contact_id, k.contact_name, k.line_amount_types, k.sub_total,
            k.total, k.amount_due, k.amount_paid, k.amount_credited, k.due_date, k.fully_paid_on, k.last_payment_date,
            NULL) AS differs
    FROM kept k
    LEFT JOIN xero_sync.xero_document d ON d.tenant_id = %(tenant_id)s AND d.kind = k.kind AND d.xero_id = k.xero_id
), changed AS (
    UPDATE xero_sync.xero_document d SET
        astute_id = k.astute_id, number = k.number, status = k.status, xero_contact_id = k.xero_contact_id,
        contact_name = k.contact_name, line_amount_types = k.line_amount_types, sub_total = k.sub_total,
        total = k.total, amount_due = k.amount_due, amount_paid = k.amount_paid, amount_credited = k.amount_credited,
        due_date = k.due_date, fully_paid_on = k.fully_paid_on, last_payment_date = k.last_payment_date,
        updated_in_xero = k.updated_in_xero, read_at = %(read_at)s, missing_since = NULL
    FROM compared k
    WHERE k.held AND k.differs
      AND d.tenant_id = %(tenant_id)s AND d.kind = k.kind AND d.xero_id = k.xero_id
      AND (d.astute_id, d.number, d.status, d.xero_contact_id, d.contact_name, d.line_amount_types, d.sub_total,
           d.total, d.amount_due, d.amount_paid, d.amount_credited, d.due_date, d.fully_paid_on, d.last_payment_date,
           d.missing_since)
          IS DISTINCT FROM
          (k.astute_id, k.number, k.status, k.xero_contact_id, k.contact_name, k.line_amount_types, k.sub_total,
           k.total, k.amount_due, k.amount_paid, k.amount_credited, k.due_date, k.fully_paid_on, k.last_payment_date,
           NULL)
    RETURNING 1
), added AS (  -- one another session inserted meanwhile is left to the next read
    INSERT INTO xero_sync.xero_document AS d
        (tenant_id, kind, xero_id, astute_id, number, status, xero_contact_id, contact_name, line_amount_types,
         sub_total, total, amount_due, amount_paid, amount_credited, due_date, fully_paid_on, last_payment_date,
         updated_in_xero, read_at, missing_since)
    SELECT %(tenant_id)s, kind, xero_id, astute_id, number, status, xero_contact_id, contact_name, line_amount_types,
           sub_total, total, amount_due, amount_paid, amount_credited, due_date, fully_paid_on, last_payment_date,
           updated_in_xero, %(read_at)s, NULL
    FROM compared
    WHERE NOT held
    ON CONFLICT (tenant_id, kind, xero_id) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM changed) + (SELECT count(*) FROM added);
