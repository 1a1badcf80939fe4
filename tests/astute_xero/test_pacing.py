"""The shared call budget, on a real PostgreSQL, with workers in threads (each its own connection)."""

from __future__ import annotations

import datetime as dt
import threading
import time

import psycopg
import pytest

from astute_xero.xero import pacing
from astute_xero.operations.migrations import apply_migrations
from astute_xero.xero.pacing import OrganisationLimits, Pacer, XeroLimits
from astute_xero import leases


@pytest.fixture
def pacer_for(db: psycopg.Connection, database_url: str):
    apply_migrations(db)

    def make(max_slot_wait=pacing.MAX_SLOT_WAIT, max_budget_wait=pacing.MAX_BUDGET_WAIT,
             slot_margin=pacing.SLOT_MARGIN, **limits) -> Pacer:
        """A worker's pacer; `limits` are the organisations' (OrganisationLimits fields)."""
        return Pacer(lambda: psycopg.connect(database_url, autocommit=True),
                     limits=XeroLimits(OrganisationLimits(**limits)),
                     max_slot_wait=max_slot_wait, max_budget_wait=max_budget_wait, slot_margin=slot_margin)

    return make


def run_workers(pacers: list[Pacer], calls_each: int, tenant: str, hold_s: float = 0.0) -> tuple[list[float], int]:
    starts: list[float] = []
    in_flight = peak = 0
    lock = threading.Lock()

    def worker(pacer: Pacer) -> None:
        nonlocal in_flight, peak
        for _ in range(calls_each):
            with pacer.call(tenant):
                with lock:
                    starts.append(time.monotonic())
                    in_flight += 1
                    peak = max(peak, in_flight)
                time.sleep(hold_s)
                with lock:
                    in_flight -= 1

    threads = [threading.Thread(target=worker, args=(p,)) for p in pacers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return sorted(starts), peak


def test_workers_share_one_budget_per_window(pacer_for):
    window = dt.timedelta(seconds=1)
    pacers = [pacer_for(per_minute=5, minute_s=1) for _ in range(4)]
    starts, _ = run_workers(pacers, 3, "org-a")  # 12 calls, 5 per window: at least 3 windows
    assert len(starts) == 12
    assert starts[-1] - starts[0] >= 2 * window.total_seconds() * 0.9
    # No window of one second ever held more than 5 calls.
    for i, first in enumerate(starts):
        assert sum(1 for s in starts[i:] if s - first < 0.95) <= 5


def test_no_more_calls_in_flight_than_the_concurrency_limit(pacer_for):
    pacers = [pacer_for(concurrent=2) for _ in range(6)]
    _, peak = run_workers(pacers, 2, "org-b", hold_s=0.1)
    assert peak == 2


def test_organisations_do_not_share_budgets(pacer_for):
    pacer = pacer_for(per_minute=2, minute_s=30)
    started = time.monotonic()
    for tenant in ("x", "x", "y", "y"):
        with pacer.call(tenant):
            pass
    assert time.monotonic() - started < 1


def test_a_429_blocks_every_worker_until_retry_after(pacer_for):
    first, second = pacer_for(), pacer_for()
    first.block("org-c", 1.0)
    started = time.monotonic()
    with second.call("org-c"):
        pass
    assert time.monotonic() - started >= 0.9
    assert second.waited_s >= 0.9


# --- bounded waits (issue 9): a worker never waits forever for a slot or for the budget -------------


def test_waiting_for_a_slot_is_bounded_and_names_the_organisation(pacer_for):
    holder = pacer_for(concurrent=1)
    waiter = pacer_for(concurrent=1, max_slot_wait=dt.timedelta(seconds=0.3))
    with holder.call("org-stuck"):  # another worker's call that never ends
        started = time.monotonic()
        with pytest.raises(RuntimeError) as caught:
            with waiter.call("org-stuck"):
                pass
        elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 1.5
    message = str(caught.value)
    assert "org-stuck" in message and "slot" in message and "1 call in progress" in message
    with waiter.call("org-stuck"):  # the holder is done: the slot is free again
        pass


def test_waiting_for_the_minute_budget_is_bounded_and_frees_the_slot(pacer_for):
    pacer = pacer_for(per_minute=1, concurrent=1, max_budget_wait=dt.timedelta(seconds=0.3))
    with pacer.call("org-busy"):
        pass
    started = time.monotonic()
    with pytest.raises(RuntimeError) as caught:
        with pacer.call("org-busy"):
            pass
    elapsed = time.monotonic() - started
    assert elapsed < 0.25, "the minute's next call comes after the bound: said at once, not slept on"
    message = str(caught.value)
    assert "org-busy" in message and "minute budget" in message and "1 call" in message
    # The slot taken before the budget wait was given back.
    other = pacer_for(concurrent=1)
    taken = leases.acquire(other._db, "another worker", ["slot:org-busy:0"], dt.timedelta(seconds=5))
    other.close()
    assert taken


def test_a_block_longer_than_the_bound_fails_at_once(pacer_for):
    pacer = pacer_for(max_budget_wait=dt.timedelta(seconds=5))
    pacer.block("org-blocked", 120)
    started = time.monotonic()
    with pytest.raises(RuntimeError) as caught:
        with pacer.call("org-blocked"):
            pass
    assert time.monotonic() - started < 1, "no point sleeping until the bound: the block outlasts it"
    message = str(caught.value)
    assert "org-blocked" in message and "Retry-After" in message


def test_the_default_bounds_outlast_xeros_minute_window():
    assert pacing.MAX_BUDGET_WAIT >= dt.timedelta(minutes=10) > pacing.OrganisationLimits().window
    assert pacing.MAX_SLOT_WAIT > pacing.MAX_BUDGET_WAIT  # a slot is held through its holder's budget wait


# --- slots die with their holder, and only with it (issue 19) ----------------------------------------


def test_a_slot_is_not_freed_by_its_connection_closing_while_its_holder_lives(pacer_for):
    """Behind a transaction-mode pooler the server connection that took a slot goes back to the pool after each
    statement: the slot must stay its holder's, not go with the connection."""
    holder = pacer_for(concurrent=1)
    waiter = pacer_for(concurrent=1, max_slot_wait=dt.timedelta(seconds=0.5))
    with holder.call("org-pooled"):
        holder._db.close()  # the pooler hands the server connection to someone else
        with pytest.raises(RuntimeError, match="slot"):
            with waiter.call("org-pooled"):
                pass
    with waiter.call("org-pooled"):  # the holder's call is over: its slot is free
        pass


def test_a_slot_whose_holder_died_comes_back_within_the_calls_bound(pacer_for):
    """A worker host that dies keeps its TCP connection open on the database for hours: its slot must come back
    after its call's own bound, not then."""
    dead = pacer_for(concurrent=1, slot_margin=dt.timedelta(0))
    waiter = pacer_for(concurrent=1, max_slot_wait=dt.timedelta(seconds=10))
    stuck = dead.call("org-dead", hold_for=dt.timedelta(seconds=1))
    stuck.__enter__()  # and never heard of again (its connection stays open)
    started = time.monotonic()
    with waiter.call("org-dead"):
        pass
    assert 0.8 <= time.monotonic() - started < 5
    assert not dead._db.closed and stuck


def test_a_budget_row_locked_by_a_worker_that_stopped_inside_its_transaction_comes_back(pacer_for):
    """A worker stops between locking an organisation's budget row and committing (killed, its host gone): every
    other worker of that organisation would wait on the row until TCP keepalive noticed. The server ends the
    stopped worker's session instead, and the budget is usable again within seconds."""
    stopped = pacer_for()
    with stopped.call("org-frozen"):  # the row exists
        pass
    transaction = stopped._db.transaction()
    transaction.__enter__()
    stopped._lock("org-frozen")  # and the worker never comes back
    waiter = pacer_for()
    started = time.monotonic()
    with waiter.call("org-frozen"):
        pass
    assert 5 < time.monotonic() - started < 15, "the stopped worker's session was ended by the server (10 s idle)"
