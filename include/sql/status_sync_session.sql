-- A sync's scratch tables (this connection only): one page of Xero's documents, every document of ours read (a
-- document read twice is noted twice: no index to keep up for each row of a million), and after a full read's
-- pages what none of them brought (status_sync_unseen).
CREATE TEMP TABLE IF NOT EXISTS xero_page (
    kind text NOT NULL, xero_id uuid NOT NULL, number text, status text NOT NULL, xero_contact_id uuid,
    contact_name text, line_amount_types text, sub_total numeric(18, 2), total numeric(18, 2),
    amount_due numeric(18, 2), amount_paid numeric(18, 2), amount_credited numeric(18, 2), due_date date,
    fully_paid_on date, last_payment_date date, updated_in_xero timestamptz NOT NULL,
    carries_astute_url boolean NOT NULL  -- an invoice whose Url is an Astute invoice's link (ASTUTE_INVOICE_URL)
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS xero_seen (kind text NOT NULL, xero_id uuid NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS xero_unseen (kind text NOT NULL, xero_id uuid NOT NULL);
TRUNCATE xero_seen, xero_unseen;
