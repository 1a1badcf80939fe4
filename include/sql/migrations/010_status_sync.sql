-- What happens in Xero after the export, read back by xero_status_sync.

-- Each document Xero holds that this app exported (or created, unknown to Astute), as last read.
CREATE TABLE IF NOT EXISTS xero_sync.xero_document (
    tenant_id          text NOT NULL,
    kind               text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    xero_id            uuid NOT NULL,
    astute_id          bigint,                 -- NULL: Astute does not know this document
    number             text,
    status             text NOT NULL,          -- Xero's: AUTHORISED, PAID, VOIDED, DELETED, ...
    xero_contact_id    uuid,
    contact_name       text,
    line_amount_types  text,
    sub_total          numeric(18, 2),
    total              numeric(18, 2),
    amount_due         numeric(18, 2),         -- credit notes: the credit not applied yet (RemainingCredit)
    amount_paid        numeric(18, 2),
    amount_credited    numeric(18, 2),         -- invoices: credit notes applied to it; credit notes: applied to invoices
    due_date           date,
    fully_paid_on      date,
    last_payment_date  date,
    updated_in_xero    timestamptz NOT NULL,   -- Xero's UpdatedDateUTC
    read_at            timestamptz NOT NULL,
    missing_since      timestamptz,            -- a full reconciliation no longer found it in Xero
    PRIMARY KEY (tenant_id, kind, xero_id)
);
CREATE INDEX IF NOT EXISTS xero_document_astute ON xero_sync.xero_document (kind, astute_id);

-- Per organisation, where the incremental read stands.
CREATE TABLE IF NOT EXISTS xero_sync.status_sync (
    tenant_id          text PRIMARY KEY,
    modified_since     timestamptz,            -- the newest UpdatedDateUTC read: the next read asks what changed after it
    last_success_at    timestamptz,
    last_full_at       timestamptz,
    last_error         text,
    last_calls         integer
);

-- Astute and Xero disagreeing: recorded once (while open), never fixed silently.
CREATE TABLE IF NOT EXISTS xero_sync.drift (
    id                 bigserial PRIMARY KEY,
    tenant_id          text NOT NULL,
    kind               text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    astute_id          bigint,
    xero_id            uuid,
    number             text,
    drift              text NOT NULL CHECK (drift IN ('missing_in_xero', 'voided_in_xero', 'deleted_in_xero',
                                                      'total_differs', 'contact_changed', 'unknown_to_astute')),
    detail             text NOT NULL,
    what_to_do         text NOT NULL,
    found_at           timestamptz NOT NULL DEFAULT now(),
    found_by           text,                   -- the sync run (Airflow run id) that found it
    resolved_at        timestamptz             -- the condition no longer holds (a later read)
);
CREATE UNIQUE INDEX IF NOT EXISTS drift_open_once
    ON xero_sync.drift (tenant_id, kind, coalesce(xero_id::text, ''), coalesce(astute_id, 0), drift)
    WHERE resolved_at IS NULL;

-- Per exported invoice, the payment picture as Xero last showed it.
CREATE OR REPLACE VIEW xero_sync.invoice_payment AS
SELECT i.id AS invoice_id, i.billing_entity_id, i.pay_run_id, i.customer_id, i.invoice_number,
       d.tenant_id, d.xero_id AS xero_invoice_id, d.status AS xero_status, d.total, d.amount_due, d.amount_paid,
       d.amount_credited, d.due_date, d.fully_paid_on, d.last_payment_date, d.read_at,
       CASE
           WHEN d.status IN ('VOIDED', 'DELETED') OR d.missing_since IS NOT NULL THEN 'not in Xero'
           WHEN d.status = 'PAID' OR d.amount_due = 0 THEN 'paid'
           WHEN d.due_date < current_date THEN 'overdue'
           WHEN coalesce(d.amount_paid, 0) + coalesce(d.amount_credited, 0) > 0 THEN 'part-paid'
           ELSE 'awaiting payment'
       END AS payment_state
FROM xero_sync.xero_document d
JOIN astute.invoice i ON i.id = d.astute_id
WHERE d.kind = 'invoice';

-- Per pay run (the help article's report counts pay runs): how its exported invoices stand in Xero.
CREATE OR REPLACE VIEW xero_sync.pay_run_payment AS
SELECT billing_entity_id, pay_run_id,
       count(*) AS invoices,
       count(*) FILTER (WHERE payment_state = 'paid') AS paid,
       count(*) FILTER (WHERE payment_state = 'part-paid') AS part_paid,
       count(*) FILTER (WHERE payment_state = 'awaiting payment') AS awaiting_payment,
       count(*) FILTER (WHERE payment_state = 'overdue') AS overdue,
       count(*) FILTER (WHERE payment_state = 'not in Xero') AS not_in_xero,
       sum(total) AS total, sum(amount_due) AS amount_due,
       CASE WHEN count(*) = count(*) FILTER (WHERE payment_state = 'paid') THEN 'paid'
            WHEN count(*) FILTER (WHERE payment_state = 'overdue') > 0 THEN 'overdue'
            WHEN count(*) FILTER (WHERE payment_state IN ('paid', 'part-paid')) > 0 THEN 'part-paid'
            ELSE 'awaiting payment' END AS payment_state
FROM xero_sync.invoice_payment
WHERE pay_run_id IS NOT NULL
GROUP BY billing_entity_id, pay_run_id;

-- The read back matches Xero's ids to Astute's documents.
CREATE INDEX IF NOT EXISTS invoice_export_xero_id ON xero_sync.invoice_export (xero_invoice_id);
CREATE INDEX IF NOT EXISTS credit_note_export_xero_id ON xero_sync.credit_note_export (xero_credit_note_id);
