-- One of an organisation's concurrent-call slots: a session advisory lock, released when the call
-- ends or, if the worker dies, with its connection.
SELECT pg_try_advisory_lock(hashtext(%(tenant_id)s), %(slot)s);
