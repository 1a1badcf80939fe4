-- Where the read back stands, per organisation and per kind of document (issue 20): the newest UpdatedDateUTC
-- read of that kind, Xero's clock. One mark for both reads let an invoice changed between the invoice read and the
-- credit-note read fall behind it for good. The next read of a kind asks what changed since its mark, less a
-- margin (the overlap), so a change is read at least once whatever the order of reads and pages.
CREATE TABLE IF NOT EXISTS xero_sync.status_sync_watermark (
    tenant_id       text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    modified_since  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);
-- From the single mark: both kinds start where it stood (the overlap re-reads what is just below it).
INSERT INTO xero_sync.status_sync_watermark (tenant_id, kind, modified_since)
SELECT s.tenant_id, k.kind, s.modified_since
FROM xero_sync.status_sync s CROSS JOIN (VALUES ('invoice'), ('credit_note')) AS k(kind)
WHERE s.modified_since IS NOT NULL
ON CONFLICT DO NOTHING;
COMMENT ON COLUMN xero_sync.status_sync.modified_since IS
    'the oldest of the organisation''s marks per kind (xero_sync.status_sync_watermark): where its read stands';
