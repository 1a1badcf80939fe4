-- After a full read, the planner's view of xero_document (last analysed perhaps while it was empty: autovacuum may
-- be off, or not have come round yet). Without it, the look-ups and drift checks that follow plan nested loops
-- over the whole organisation and take minutes at 20,000 documents instead of a second at a million.
ANALYZE xero_sync.xero_document;
