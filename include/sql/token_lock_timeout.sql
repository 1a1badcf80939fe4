-- Bounds this transaction's wait for the chain's row lock (a worker holds it while it refreshes), and makes the
-- lock die with its holder: a holder that stops mid-refresh (killed, its host gone) leaves its session idle in
-- this transaction, which the server ends after %(holder_timeout)s, releasing the lock, instead of keeping it
-- until TCP keepalive notices (hours).
SELECT set_config('lock_timeout', %(lock_timeout)s, true),
       set_config('idle_in_transaction_session_timeout', %(holder_timeout)s, true);
