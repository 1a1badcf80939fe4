-- The planner's only view of what a sync read (a temporary table has no statistics until analysed).
ANALYZE xero_seen;
