-- A waiter that gives up leaves the queue at once (xero_sync.slot_leave_queue, migration 015).
SELECT xero_sync.slot_leave_queue(%(tenant_id)s, %(holder)s, %(ticket)s::bigint, %(concurrent)s);
