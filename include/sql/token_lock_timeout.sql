-- Bounds this transaction's wait for the chain's row lock (a worker holds it while it refreshes).
SELECT set_config('lock_timeout', %(lock_timeout)s, true);
