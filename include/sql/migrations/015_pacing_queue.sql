-- Waiting for an organisation's call slot without polling, first come first served (issue 22).
--
-- A worker that finds every slot of an organisation taken queues: it takes a numbered ticket (a row that expires on
-- the database's clock unless its holder renews it, so a waiter that died leaves the queue within one time-to-live)
-- and LISTENs on the organisation's channel. Only the oldest live tickets, as many as there are free slots, may
-- take a slot; whoever frees a slot (or takes one and sees more free) NOTIFYs the tickets whose turn it now is.
-- Every operation is one autocommitted statement (a call of the functions below), so the queue means the same
-- behind a transaction-mode pooler; there LISTEN hears nothing, and waiters find their turn on their own periodic
-- wake-up instead (slower hand-over, still in order and within the limits).
CREATE TABLE xero_sync.slot_ticket (
    ticket      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- the order of arrival at the database
    tenant_id   text NOT NULL,
    holder      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX slot_ticket_queue ON xero_sync.slot_ticket (tenant_id, ticket);

-- The channel on which an organisation's waiters hear that a slot may be theirs (a fixed length: a tenant id of
-- any length makes a valid channel name).
CREATE FUNCTION xero_sync.slot_channel(p_tenant text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT 'xero_slots_' || md5(p_tenant) $$;

-- Takes, releases and departures of one organisation's slots happen one at a time (a lock held to the end of the
-- statement that calls this, one autocommitted statement: nothing outlives it, pooler or not). Else two slots given
-- back at once would each see only its own free and both call the same first ticket, leaving the second waiting.
CREATE FUNCTION xero_sync.slot_queue_lock(p_tenant text) RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(1481855313, hashtext(p_tenant)) $$;  -- 1481855313: 'XSQQ'

-- Tell the oldest live tickets, as many as the organisation has free slots, that they may take one (payload: their
-- numbers, comma-separated). Nothing is sent when no slot is free or nobody waits.
CREATE FUNCTION xero_sync.slot_call_next(p_tenant text, p_concurrent int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_free int;
    v_next text;
BEGIN
    SELECT p_concurrent - count(*) INTO v_free
    FROM xero_sync.lease
    WHERE lease_key IN (SELECT 'slot:' || p_tenant || ':' || n FROM generate_series(0, p_concurrent - 1) AS n)
      AND expires_at > now();
    IF v_free <= 0 THEN
        RETURN;
    END IF;
    SELECT string_agg(first.ticket::text, ',' ORDER BY first.ticket) INTO v_next
    FROM (SELECT t.ticket FROM xero_sync.slot_ticket AS t
          WHERE t.tenant_id = p_tenant AND t.expires_at > now()
          ORDER BY t.ticket LIMIT v_free) AS first;
    IF v_next IS NOT NULL THEN
        PERFORM pg_notify(xero_sync.slot_channel(p_tenant), v_next);
    END IF;
END $$;

-- One try at one of an organisation's slots, for a worker with a ticket (p_ticket) or without one yet (NULL).
-- A worker without a ticket takes a free slot only if nobody is queued; one with a ticket only if it is among the
-- oldest live tickets, as many as there are free slots. A worker that takes a slot gives up its ticket and calls
-- the next waiters if slots are still free; one that does not gets a ticket (or its ticket renewed for one more
-- p_ticket_ttl). Returns the slot key taken (NULL: none), the ticket, the channel to LISTEN on, in how many seconds
-- something may change that nobody will NOTIFY (a held slot or a ticket ahead expiring; NULL: nothing), and how many
-- live tickets are ahead of ours.
CREATE FUNCTION xero_sync.slot_take(
    p_tenant text, p_holder text, p_concurrent int, p_slot_ttl interval, p_ticket bigint, p_ticket_ttl interval,
    OUT slot_key text, OUT ticket bigint, OUT channel text, OUT wake_in float8, OUT ahead int)
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    v_keys text[];
    v_free_keys text[];
    v_ahead int;
    v_key text;
BEGIN
    PERFORM xero_sync.slot_queue_lock(p_tenant);
    channel := xero_sync.slot_channel(p_tenant);
    ticket := p_ticket;
    DELETE FROM xero_sync.slot_ticket AS t WHERE t.tenant_id = p_tenant AND t.expires_at <= now();
    IF ticket IS NOT NULL THEN
        UPDATE xero_sync.slot_ticket AS t SET expires_at = now() + p_ticket_ttl
        WHERE t.ticket = p_ticket AND t.holder = p_holder;
        IF NOT FOUND THEN  -- it expired (this worker stalled past its time-to-live): back of the queue
            ticket := NULL;
        END IF;
    END IF;

    v_keys := ARRAY(SELECT 'slot:' || p_tenant || ':' || n FROM generate_series(0, p_concurrent - 1) AS n);
    v_free_keys := ARRAY(
        SELECT k FROM unnest(v_keys) WITH ORDINALITY AS u(k, i)
        WHERE NOT EXISTS (SELECT 1 FROM xero_sync.lease AS l WHERE l.lease_key = u.k AND l.expires_at > now())
        ORDER BY i);
    SELECT count(*) INTO v_ahead FROM xero_sync.slot_ticket AS t
    WHERE t.tenant_id = p_tenant AND (ticket IS NULL OR t.ticket < ticket);

    IF v_ahead < coalesce(array_length(v_free_keys, 1), 0) THEN
        FOREACH v_key IN ARRAY v_free_keys LOOP
            INSERT INTO xero_sync.lease AS l (lease_key, holder, acquired_at, expires_at)
            VALUES (v_key, p_holder, now(), now() + p_slot_ttl)
            ON CONFLICT (lease_key) DO UPDATE
            SET holder = EXCLUDED.holder, acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at
            WHERE l.expires_at <= now()
            RETURNING l.lease_key INTO slot_key;
            EXIT WHEN slot_key IS NOT NULL;  -- else another worker took it since we looked: the next
        END LOOP;
    END IF;

    IF slot_key IS NOT NULL THEN
        IF ticket IS NOT NULL THEN
            DELETE FROM xero_sync.slot_ticket AS t WHERE t.ticket = p_ticket;
            ticket := NULL;
        END IF;
        PERFORM xero_sync.slot_call_next(p_tenant, p_concurrent);
        RETURN;
    END IF;

    IF ticket IS NULL THEN
        INSERT INTO xero_sync.slot_ticket (tenant_id, holder, expires_at)
        VALUES (p_tenant, p_holder, now() + p_ticket_ttl)
        RETURNING slot_ticket.ticket INTO ticket;
        SELECT count(*) INTO v_ahead FROM xero_sync.slot_ticket AS t
        WHERE t.tenant_id = p_tenant AND t.ticket < ticket;
    END IF;
    -- Unannounced changes: a held slot expiring (its holder died) matters to the head of the queue, which then takes
    -- it and calls the next; a ticket ahead expiring (its waiter died) matters while slots are free. The rest hear.
    ahead := v_ahead;
    SELECT extract(epoch FROM least(
               CASE WHEN v_ahead < p_concurrent THEN
                   (SELECT min(l.expires_at) FROM xero_sync.lease AS l
                    WHERE l.lease_key = ANY (v_keys) AND l.expires_at > now()) END,
               CASE WHEN coalesce(array_length(v_free_keys, 1), 0) > 0 THEN
                   (SELECT min(t.expires_at) FROM xero_sync.slot_ticket AS t
                    WHERE t.tenant_id = p_tenant AND t.ticket < ticket) END) - now())::float8
    INTO wake_in;
END $$;

-- Give a slot back and call the next waiters.
CREATE FUNCTION xero_sync.slot_release(p_tenant text, p_holder text, p_key text, p_concurrent int) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM xero_sync.slot_queue_lock(p_tenant);
    DELETE FROM xero_sync.lease WHERE lease_key = p_key AND holder = p_holder;
    PERFORM xero_sync.slot_call_next(p_tenant, p_concurrent);
END $$;

-- A waiter leaves the queue (it gave up: its bound passed, or it failed) at once rather than at its ticket's expiry,
-- and the next waiters are called in case a slot is free for them.
CREATE FUNCTION xero_sync.slot_leave_queue(p_tenant text, p_holder text, p_ticket bigint, p_concurrent int)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM xero_sync.slot_queue_lock(p_tenant);
    DELETE FROM xero_sync.slot_ticket AS t WHERE t.ticket = p_ticket AND t.holder = p_holder;
    PERFORM xero_sync.slot_call_next(p_tenant, p_concurrent);
END $$;
