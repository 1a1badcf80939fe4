-- One try at one of an organisation's call slots, in turn (xero_sync.slot_take, migration 015): the slot key taken
-- or NULL, the caller's ticket in the queue, the channel its turn is announced on, and when to look again unasked.
SELECT slot_key, ticket, channel, wake_in
FROM xero_sync.slot_take(%(tenant_id)s, %(holder)s, %(concurrent)s, %(slot_ttl)s::interval, %(ticket)s::bigint,
                         %(ticket_ttl)s::interval);
