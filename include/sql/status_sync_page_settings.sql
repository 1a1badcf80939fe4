-- A page's transaction does not wait for its commit to reach the disk (this transaction only): lost in a crash,
-- the page is read again (a kind's mark moves only when the sync that read it finishes, in a transaction that
-- does wait).
SET LOCAL synchronous_commit = off;
