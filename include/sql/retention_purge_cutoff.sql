-- Retention's cutoff, on the database's clock: the one that stamped export_run.finished_at, whatever
-- the worker's clock says. Read once per purge, so a run finishing while the purge works through its
-- batches never joins it half-way.
SELECT now() - make_interval(days => %(older_than_days)s);
