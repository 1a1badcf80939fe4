-- Leases: what a worker holds (an organisation's call slot, a document it is sending) as rows with an expiry on
-- the database's clock, instead of session advisory locks. A lease dies with its holder: a holder renews it while
-- it works (a heartbeat), so a holder that stops (killed, its host gone, its network cut) loses it within one
-- time-to-live, whatever its TCP connection does; and every operation on a lease is one autocommitted statement,
-- so leases mean the same behind a pooler in transaction mode (PgBouncer) as on a direct connection.
CREATE TABLE xero_sync.lease (
    lease_key   text PRIMARY KEY,          -- 'slot:<tenant id>:<n>', 'invoice:<id>', 'credit_note:<id>'
    holder      text NOT NULL,             -- one attempt of one worker: host, process and a random part
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX lease_holder ON xero_sync.lease (holder);
