-- A short transaction that holds row locks others wait for (an organisation's call budget): if its holder stops
-- inside it (killed, its host gone), the server ends the session after this long idle, and the locks go with it.
SELECT set_config('idle_in_transaction_session_timeout', '10s', true);
