-- The pipeline's own state, beside Astute's tables and never inside them.
-- Applied by astute_xero.migrations, once, in a transaction; every object is
-- created only if absent so a half-known database is never a problem.

CREATE SCHEMA IF NOT EXISTS xero_sync;

-- One row per export run (a DAG run of xero_invoice_export, or a mock export).
CREATE TABLE IF NOT EXISTS xero_sync.export_run (
    run_id             bigserial PRIMARY KEY,
    kind               text NOT NULL CHECK (kind IN ('export', 'mock_export')),
    dag_id             text NOT NULL,
    airflow_run_id     text NOT NULL,
    params             jsonb NOT NULL DEFAULT '{}'::jsonb,
    status             text NOT NULL DEFAULT 'running'
                       CHECK (status IN ('running', 'sent', 'failed', 'nothing_to_send')),
    started_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    invoices_selected  integer NOT NULL DEFAULT 0,
    invoices_held      integer NOT NULL DEFAULT 0,
    invoices_deferred  integer NOT NULL DEFAULT 0,
    invoices_exported  integer NOT NULL DEFAULT 0,
    invoices_failed    integer NOT NULL DEFAULT 0,
    chunks_planned     integer NOT NULL DEFAULT 0,
    api_calls          integer NOT NULL DEFAULT 0,
    UNIQUE (dag_id, airflow_run_id)
);

-- The billing entities a run looked at, and what it decided for each.
CREATE TABLE IF NOT EXISTS xero_sync.run_entity (
    run_id             bigint NOT NULL REFERENCES xero_sync.export_run (run_id),
    billing_entity_id  bigint NOT NULL,
    entity_name        text NOT NULL,
    tenant_id          text,
    decision           text NOT NULL
                       CHECK (decision IN ('export', 'skipped_unlinked', 'skipped_not_live', 'stopped')),
    detail             text,
    PRIMARY KEY (run_id, billing_entity_id)
);

-- The run's work list: ids only, the invoices themselves stay in Astute.
CREATE TABLE IF NOT EXISTS xero_sync.run_invoice (
    run_id             bigint NOT NULL REFERENCES xero_sync.export_run (run_id),
    invoice_id         bigint NOT NULL,
    billing_entity_id  bigint NOT NULL,
    tenant_id          text NOT NULL,
    customer_id        bigint NOT NULL,
    stage              text NOT NULL DEFAULT 'selected'
                       CHECK (stage IN ('selected', 'held', 'ready', 'deferred')),
    chunk_no           integer,
    PRIMARY KEY (run_id, invoice_id)
);
CREATE INDEX IF NOT EXISTS run_invoice_chunk ON xero_sync.run_invoice (run_id, tenant_id, chunk_no);

-- Why an invoice was held back before any call to Xero (the report's Validation Errors).
CREATE TABLE IF NOT EXISTS xero_sync.validation_issue (
    run_id      bigint NOT NULL REFERENCES xero_sync.export_run (run_id),
    invoice_id  bigint NOT NULL,
    line_no     integer,
    rule        text NOT NULL,
    message     text NOT NULL
);
CREATE INDEX IF NOT EXISTS validation_issue_run ON xero_sync.validation_issue (run_id, invoice_id);

-- One row per chunk (at most 100 invoices, one API call).
CREATE TABLE IF NOT EXISTS xero_sync.export_chunk (
    run_id          bigint NOT NULL REFERENCES xero_sync.export_run (run_id),
    tenant_id       text NOT NULL,
    chunk_no        integer NOT NULL,
    invoice_count   integer NOT NULL,
    estimated_bytes bigint NOT NULL,
    status          text NOT NULL DEFAULT 'planned'
                    CHECK (status IN ('planned', 'done', 'stopped')),
    PRIMARY KEY (run_id, tenant_id, chunk_no)
);

-- The export flag: one row per invoice the pipeline has handled.
-- 'sending' is the in-flight state: claimed for a call whose outcome is not yet recorded.
CREATE TABLE IF NOT EXISTS xero_sync.invoice_export (
    invoice_id       bigint PRIMARY KEY,
    tenant_id        text NOT NULL,
    status           text NOT NULL
                     CHECK (status IN ('sending', 'exported', 'failed', 'mock_exported', 'reset')),
    xero_invoice_id  uuid,
    run_id           bigint,
    chunk_no         integer,
    attempts         integer NOT NULL DEFAULT 0,
    exported_at      timestamptz,
    last_error       text,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS invoice_export_status ON xero_sync.invoice_export (status);

-- One row per call to Xero. Never holds a token or a secret.
CREATE TABLE IF NOT EXISTS xero_sync.api_log (
    id               bigserial PRIMARY KEY,
    run_id           bigint,
    tenant_id        text,
    method           text NOT NULL,
    endpoint         text NOT NULL,
    chunk_no         integer,
    item_count       integer NOT NULL DEFAULT 0,
    http_status      integer,
    started_at       timestamptz NOT NULL,
    duration_ms      integer NOT NULL,
    idempotency_key  text,
    rate_limits      jsonb,
    outcome          jsonb,
    error            text
);
CREATE INDEX IF NOT EXISTS api_log_run ON xero_sync.api_log (run_id, tenant_id, chunk_no);

-- An Astute customer's Contact in one Xero organisation.
CREATE TABLE IF NOT EXISTS xero_sync.contact_link (
    customer_id        bigint NOT NULL,
    tenant_id          text NOT NULL,
    xero_contact_id    uuid NOT NULL,
    xero_contact_name  text NOT NULL,
    linked_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, tenant_id)
);

-- The rotating OAuth2 chain of one Xero connection, shared by every worker.
CREATE TABLE IF NOT EXISTS xero_sync.oauth_token (
    connection_id      text PRIMARY KEY,
    seed_fingerprint   text NOT NULL,
    refresh_token      text NOT NULL,
    access_token       text,
    access_expires_at  timestamptz,
    scope              text,
    rotated_at         timestamptz NOT NULL DEFAULT now()
);
