-- A page's transaction (this transaction only):
-- * it does not wait for its commit to reach the disk: lost in a crash, the page is read again (a kind's mark moves
--   only when the sync that read it finishes, in a transaction that does wait);
-- * the upsert is planned for each page, never from a plan cached while xero_document was small: a first read
--   grows it from nothing to a million rows, and a cached generic plan that scans it costs more every page.
SET LOCAL synchronous_commit = off;
SET LOCAL plan_cache_mode = force_custom_plan;
