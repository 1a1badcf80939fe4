-- Each organisation's call budget, shared by every worker: Xero allows 60 calls a minute per
-- organisation (fixed windows) and refuses the rest with 429.
CREATE TABLE IF NOT EXISTS xero_sync.rate_budget (
    tenant_id         text PRIMARY KEY,
    window_started_at timestamptz NOT NULL,
    calls             integer NOT NULL DEFAULT 0,
    blocked_until     timestamptz
);
