-- A stable identity for every document in Xero, and a reconciliation window that does not move.
--
-- first_claimed_at: when the document was first claimed for a call to Xero. Reconciliation looks
--   for an earlier copy from there: later claims and releases (which set updated_at) never move it.
-- last_sent_at: when the latest call carrying the document started. While that call may still be
--   committing at Xero (our read timeout, plus a margin), the document is not looked up or re-sent.
-- source_url: the Url an invoice carries to Xero ("Go to Astute" in Xero), fixed at its first claim.
--   Xero hands it back unchanged, so it identifies our copy whatever Xero fills in or rewrites.
--   NULL for credit notes (Xero's CreditNote has no Url) and for a row claimed before this
--   migration: those are matched by number, else by what was sent (see chunk_export).
ALTER TABLE xero_sync.invoice_export
    ADD COLUMN first_claimed_at timestamptz,
    ADD COLUMN last_sent_at     timestamptz,
    ADD COLUMN source_url       text;
ALTER TABLE xero_sync.credit_note_export
    ADD COLUMN first_claimed_at timestamptz,
    ADD COLUMN last_sent_at     timestamptz,
    ADD COLUMN source_url       text;

-- Rows attempted before this migration: the best anchor we have is their last change.
UPDATE xero_sync.invoice_export SET first_claimed_at = updated_at WHERE status IN ('sending', 'failed', 'exported');
UPDATE xero_sync.credit_note_export SET first_claimed_at = updated_at WHERE status IN ('sending', 'failed', 'exported');

-- An Astute document is linked to at most one Xero document, and a Xero document to one Astute document.
CREATE UNIQUE INDEX IF NOT EXISTS invoice_export_xero_id ON xero_sync.invoice_export (xero_invoice_id)
    WHERE xero_invoice_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS credit_note_export_xero_id ON xero_sync.credit_note_export (xero_credit_note_id)
    WHERE xero_credit_note_id IS NOT NULL;

CREATE OR REPLACE VIEW xero_sync.document_export AS
SELECT 'invoice'::text AS kind, x.invoice_id AS document_id, x.tenant_id, x.status, x.xero_invoice_id AS xero_id,
       x.run_id, x.chunk_no, x.attempts, x.exported_at, x.last_error, x.updated_at,
       x.first_claimed_at, x.last_sent_at, x.source_url
FROM xero_sync.invoice_export x
UNION ALL
SELECT 'credit_note'::text, x.credit_note_id, x.tenant_id, x.status, x.xero_credit_note_id,
       x.run_id, x.chunk_no, x.attempts, x.exported_at, x.last_error, x.updated_at,
       x.first_claimed_at, x.last_sent_at, x.source_url
FROM xero_sync.credit_note_export x;
