-- A call slot given back; the oldest waiters, as many as slots are now free, are told it is their turn (NOTIFY).
SELECT xero_sync.slot_release(%(tenant_id)s, %(holder)s, %(slot_key)s, %(concurrent)s);
