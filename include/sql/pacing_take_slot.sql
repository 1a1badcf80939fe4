-- One try at one of an organisation's call slots, in turn (xero_sync.slot_take, migration 015): the slot key taken
-- or NULL, the caller's ticket in the queue, the channel its turn is announced on, when to look again unasked, and
-- how many wait ahead of it.
SELECT slot_key, ticket, channel, wake_in, ahead
FROM xero_sync.slot_take(%(tenant_id)s, %(holder)s, %(concurrent)s, %(slot_ttl)s::interval, %(ticket)s::bigint,
                         %(ticket_ttl)s::interval);
