-- The export flag of credit notes, as invoice_export is for invoices.
CREATE TABLE IF NOT EXISTS xero_sync.credit_note_export (
    credit_note_id       bigint PRIMARY KEY,
    tenant_id            text NOT NULL,
    status               text NOT NULL
                         CHECK (status IN ('sending', 'exported', 'failed', 'mock_exported', 'reset')),
    xero_credit_note_id  uuid,
    run_id               bigint,
    chunk_no             integer,
    attempts             integer NOT NULL DEFAULT 0,
    exported_at          timestamptz,
    last_error           text,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
