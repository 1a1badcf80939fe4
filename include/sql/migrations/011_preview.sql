-- Preview runs (xero_invoice_export with `preview`): everything the export does before its first write to
-- Xero, recorded as a run of its own kind, then stopped. A preview finishes 'previewed'.
ALTER TABLE xero_sync.export_run DROP CONSTRAINT IF EXISTS export_run_kind_check;
ALTER TABLE xero_sync.export_run ADD CONSTRAINT export_run_kind_check
    CHECK (kind IN ('export', 'mock_export', 'preview'));
ALTER TABLE xero_sync.export_run DROP CONSTRAINT IF EXISTS export_run_status_check;
ALTER TABLE xero_sync.export_run ADD CONSTRAINT export_run_status_check
    CHECK (status IN ('running', 'sent', 'failed', 'nothing_to_send', 'previewed'));

-- What a preview's contact step would do for each customer, instead of doing it: create a Contact, link
-- to the existing Contact of the same name ('match'), push the customer's new name to its linked Contact
-- ('rename'), or follow a Contact merged in Xero to the one it was merged into ('relink'). The export
-- writes contact_link (and Xero) for these; a preview writes only this.
CREATE TABLE IF NOT EXISTS xero_sync.preview_contact (
    run_id             bigint NOT NULL REFERENCES xero_sync.export_run (run_id),
    tenant_id          text NOT NULL,
    customer_id        bigint NOT NULL,
    action             text NOT NULL CHECK (action IN ('create', 'match', 'rename', 'relink')),
    xero_contact_id    uuid,   -- the Contact matched, renamed or relinked to; NULL for one to create
    xero_contact_name  text,   -- that Contact's name in Xero now
    astute_name        text NOT NULL,  -- the customer's name in Astute: the Contact's name after the export
    PRIMARY KEY (run_id, tenant_id, customer_id)
);
