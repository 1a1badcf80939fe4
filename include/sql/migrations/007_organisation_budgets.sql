-- Each organisation at its own bound (issue 10).
--
-- rate_budget gains the organisation's day: Xero allows a number of calls a day per organisation
-- (5,000; 1,000 on its Starter tier). The pacer counts them here, shared by every worker, corrects the
-- count from Xero's X-DayLimit-Remaining header, and plans each run's chunks inside what is left.
-- day_blocked_until: Xero answered 429 'day' and said when the day returns (Retry-After).
-- The app-wide minute (10,000 calls across every organisation) is a row of its own, keyed 'app:<client id>'.
ALTER TABLE xero_sync.rate_budget
    ADD COLUMN day_started_at    timestamptz,
    ADD COLUMN day_calls         integer NOT NULL DEFAULT 0,
    ADD COLUMN day_blocked_until timestamptz;

-- The documents the latest validation held back, and why it is kept apart from the work lists: a run
-- selects only what it can send (its organisation's budget and Airflow's map limit), oldest first, and
-- re-checks every held document on top, so that documents waiting for a fix never fill a run's
-- capacity and their reasons stay current in the report. A document leaves when it passes validation.
CREATE TABLE IF NOT EXISTS xero_sync.document_hold (
    kind         text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    document_id  bigint NOT NULL,
    run_id       bigint NOT NULL,
    held_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, document_id)
);

-- A run that continues another's backlog says which.
ALTER TABLE xero_sync.export_run ADD COLUMN continues_run_id bigint;
