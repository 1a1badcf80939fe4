-- xero_document keyed by Xero's id alone, with room for a row's next version (issue 20, finding 6). A Xero id is
-- a UUID, unique across organisations and kinds; the key (tenant_id, kind, xero_id) repeated a 36-character tenant
-- id and the kind in every entry of an index that a read back's every row goes through (a page's upsert, the drift
-- checks): at a million documents it was 83 MB built in order (this one 30 MB), and a first full read spent a fifth
-- of its PostgreSQL time in it.
-- An organisation's own rows are still found by tenant_id (a scan, only in a full reconciliation).
ALTER TABLE xero_sync.xero_document DROP CONSTRAINT IF EXISTS xero_document_pkey;
ALTER TABLE xero_sync.xero_document ADD CONSTRAINT xero_document_pkey PRIMARY KEY (xero_id);
-- Room on each page for a document's next version: a payment read back rewrites the row, and with the page full
-- the new version lands on another page and every index gets a new entry for it (at a million documents a day's
-- 1,000 payments dirtied 3,018 pages, most of them index pages outside the server's buffers). With room, the new
-- version stays on its page and no index changes (a heap-only update: the key, the kind and the Astute id stay).
-- Pages written from now on have the room (all of a first read's); VACUUM FULL gives it to the old ones.
ALTER TABLE xero_sync.xero_document SET (fillfactor = 90);
