-- Credit notes go to Xero too (as ACCRECCREDIT), so a run's work is documents of two kinds:
-- invoices and credit notes. Each kind keeps its own export flag (invoice_export,
-- credit_note_export); the work list, validation issues and chunks say which kind a row is.

ALTER TABLE xero_sync.run_invoice RENAME TO run_document;
ALTER TABLE xero_sync.run_document RENAME COLUMN invoice_id TO document_id;
ALTER TABLE xero_sync.run_document ADD COLUMN kind text NOT NULL DEFAULT 'invoice'
    CHECK (kind IN ('invoice', 'credit_note'));
ALTER TABLE xero_sync.run_document ALTER COLUMN kind DROP DEFAULT;
ALTER TABLE xero_sync.run_document DROP CONSTRAINT run_invoice_pkey;
ALTER TABLE xero_sync.run_document ADD PRIMARY KEY (run_id, kind, document_id);
-- 'waiting': a credit note whose invoice is not in Xero yet; it goes in the run that exports the invoice.
ALTER TABLE xero_sync.run_document DROP CONSTRAINT run_invoice_stage_check;
ALTER TABLE xero_sync.run_document ADD CONSTRAINT run_document_stage_check
    CHECK (stage IN ('selected', 'held', 'ready', 'deferred', 'waiting'));
ALTER INDEX xero_sync.run_invoice_chunk RENAME TO run_document_chunk;

ALTER TABLE xero_sync.validation_issue RENAME COLUMN invoice_id TO document_id;
ALTER TABLE xero_sync.validation_issue ADD COLUMN kind text NOT NULL DEFAULT 'invoice'
    CHECK (kind IN ('invoice', 'credit_note'));
ALTER TABLE xero_sync.validation_issue ALTER COLUMN kind DROP DEFAULT;
DROP INDEX xero_sync.validation_issue_run;
CREATE INDEX validation_issue_run ON xero_sync.validation_issue (run_id, kind, document_id);

-- A chunk holds one kind; chunk numbers run on across kinds within a run and organisation.
ALTER TABLE xero_sync.export_chunk RENAME COLUMN invoice_count TO document_count;
ALTER TABLE xero_sync.export_chunk ADD COLUMN kind text NOT NULL DEFAULT 'invoice'
    CHECK (kind IN ('invoice', 'credit_note'));
ALTER TABLE xero_sync.export_chunk ALTER COLUMN kind DROP DEFAULT;

-- Held back and left for the next run count documents of both kinds.
ALTER TABLE xero_sync.export_run RENAME COLUMN invoices_held TO documents_held;
ALTER TABLE xero_sync.export_run RENAME COLUMN invoices_deferred TO documents_deferred;
ALTER TABLE xero_sync.export_run
    ADD COLUMN credit_notes_selected  integer NOT NULL DEFAULT 0,
    ADD COLUMN credit_notes_exported  integer NOT NULL DEFAULT 0,
    ADD COLUMN credit_notes_failed    integer NOT NULL DEFAULT 0,
    ADD COLUMN allocations_made       integer NOT NULL DEFAULT 0;

-- The allocation of an exported credit note to the invoice it credits (astute.credit_note.invoice_id):
--   NULL       not allocated yet (or nothing to allocate: the credit note credits no invoice)
--   sending    the PUT is in flight; a retry reads the credit note back from Xero before sending again
--   allocated  allocated_amount applied to the invoice in Xero
--   nothing    nothing could be applied (the invoice was paid or the credit used meanwhile); detail says which
--   failed     Xero refused it; detail says why
ALTER TABLE xero_sync.credit_note_export
    ADD COLUMN allocation_status  text CHECK (allocation_status IN ('sending', 'allocated', 'nothing', 'failed')),
    ADD COLUMN allocated_amount   numeric(14, 2),
    ADD COLUMN xero_allocation_id uuid,
    ADD COLUMN allocation_detail  text,
    ADD COLUMN allocated_at       timestamptz,
    ADD COLUMN allocation_run_id  bigint;

-- Astute's two kinds of document, and our two export flags, seen alike. Each branch carries its kind as
-- a constant, so a query filtered on one kind reads only that kind's table.
CREATE VIEW xero_sync.astute_document AS
SELECT 'invoice'::text AS kind, i.id AS document_id, i.billing_entity_id, i.customer_id,
       i.invoice_number AS number, i.reference, i.status, i.invoice_date AS document_date, i.due_date,
       i.currency, i.line_amount_types, NULL::bigint AS credited_invoice_id
FROM astute.invoice i
UNION ALL
SELECT 'credit_note'::text, c.id, c.billing_entity_id, c.customer_id,
       c.credit_note_number, c.reference, c.status, c.credit_date, NULL::date,
       c.currency, c.line_amount_types, c.invoice_id
FROM astute.credit_note c;

CREATE VIEW xero_sync.astute_document_line AS
SELECT 'invoice'::text AS kind, l.invoice_id AS document_id, l.line_no, l.description, l.quantity, l.unit_amount,
       l.account_code, l.tax_type, l.tracking_name, l.tracking_option
FROM astute.invoice_line l
UNION ALL
SELECT 'credit_note'::text, l.credit_note_id, l.line_no, l.description, l.quantity, l.unit_amount,
       l.account_code, l.tax_type, l.tracking_name, l.tracking_option
FROM astute.credit_note_line l;

CREATE VIEW xero_sync.document_export AS
SELECT 'invoice'::text AS kind, x.invoice_id AS document_id, x.tenant_id, x.status, x.xero_invoice_id AS xero_id,
       x.run_id, x.chunk_no, x.attempts, x.exported_at, x.last_error, x.updated_at
FROM xero_sync.invoice_export x
UNION ALL
SELECT 'credit_note'::text, x.credit_note_id, x.tenant_id, x.status, x.xero_credit_note_id,
       x.run_id, x.chunk_no, x.attempts, x.exported_at, x.last_error, x.updated_at
FROM xero_sync.credit_note_export x;

CREATE VIEW xero_sync.outstanding_document AS
SELECT 'invoice'::text AS kind, o.invoice_id AS document_id, o.billing_entity_id, o.tenant_id, o.customer_id,
       o.invoice_number AS number, o.invoice_date AS document_date, o.export_status, o.last_error
FROM xero_sync.outstanding_invoice o
UNION ALL
SELECT 'credit_note'::text, o.credit_note_id, o.billing_entity_id, o.tenant_id, o.customer_id,
       o.credit_note_number, o.credit_date, o.export_status, o.last_error
FROM xero_sync.outstanding_credit_note o;

-- The report looks up the latest run that looked at a document.
CREATE INDEX run_document_by_document ON xero_sync.run_document (kind, document_id, run_id);

-- Why a credit note waits: its invoice is not in Xero yet, and what keeps the invoice out.
CREATE VIEW xero_sync.credit_note_waiting AS
SELECT c.id AS credit_note_id, c.invoice_id,
       'Waits for ' || COALESCE('invoice ' || i.invoice_number, 'invoice id ' || i.id || ' (no number)')
       || ', which is not in Xero yet: '
       || CASE WHEN x.status = 'failed' THEN 'Xero refused it (' || COALESCE(x.last_error, 'no reason recorded') || ')'
               WHEN x.status = 'sending' THEN 'its export is in progress'
               WHEN i.status <> 'Sent' THEN 'it is ' || i.status || ' in Astute'
               WHEN held.messages IS NOT NULL THEN 'it is held back (' || held.messages || ')'
               ELSE 'it has not been exported yet' END
       || '. The credit note goes to Xero in the run that exports the invoice, and is allocated to it.' AS reason
FROM astute.credit_note c
JOIN astute.invoice i ON i.id = c.invoice_id
LEFT JOIN xero_sync.invoice_export x ON x.invoice_id = i.id
LEFT JOIN LATERAL (
    SELECT string_agg(v.message, ' | ' ORDER BY v.line_no NULLS FIRST, v.rule) AS messages
    FROM xero_sync.validation_issue v
    WHERE v.kind = 'invoice' AND v.document_id = i.id
      AND v.run_id = (SELECT max(rd.run_id) FROM xero_sync.run_document rd
                      WHERE rd.kind = 'invoice' AND rd.document_id = i.id)
) held ON true
WHERE COALESCE(x.status, 'none') NOT IN ('exported', 'mock_exported');
