"""Work done for every organisation of a run: one by one, or side by side, each up to its 5 calls at once.

Xero's limits are per organisation, so organisations never need to wait for each other: a step that
calls Xero for each organisation (reading its chart, linking its Contacts, allocating its credit notes)
runs them side by side. Within one organisation, Xero allows 5 calls in progress at once
(`limits.of(tenant).concurrent`), so a step's calls that do not depend on each other (look-up batches,
creation batches, the chart's five reads, allocations to different invoices) go up to that many at once
(`Organisation.at_once`). The pacer holds the limit across threads, processes and hosts whatever we ask.

Neither a database connection nor a Xero client (nor its pacer, which owns a connection) is shared
between threads. Every call is made through a **caller**: one connection and one client, used by one
thread at a time. A side-by-side step has a fixed number of callers (`CALLERS_PER_TASK`), opened only
when first needed and passed from organisation to organisation: each organisation at work holds one,
and borrows more, up to its concurrency, while it has more independent calls waiting than callers in
hand, and only while some are free. So one organisation alone gets its 5, three get 5 each, and with
sixteen or more every organisation at work has one and grows as others finish. `one_by_one` runs
organisations in turn on one connection and client, one call at a time (the tests' and the bench's
way to drive a step; the DAG's tasks use `side_by_side`).

Each organisation's outcome is its result or the exception it raised: the step decides what an
exception means (the organisation stopped, left for Airflow's retry, or a bug to raise) once every
organisation has had its turn, so one organisation's trouble never cuts another's work short.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar, Union

import psycopg

from astute_xero.xero.client import XeroClient
from astute_xero.xero.pacing import OrganisationLimits

log = logging.getLogger(__name__)

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - an item of work
R = TypeVar("R")

# How many callers (a database connection and a Xero client, whose pacer holds a second connection) one
# side-by-side step opens at most: 16, so at most 32 connections to the Astute database, as many as the step
# opened before calls went 5 at once (16 organisations × 2), plus the task's own and short-lived ones (a token
# read, a retried call's api_log row, an allocation batch's lease heartbeat). It is a budget shared by the
# organisations, not a number each: 5 for every one of 16 organisations would be 160 connections, more than
# a default PostgreSQL allows (max_connections 100, 3 kept for superusers), which the customer's Astute
# database shares with Astute itself and perhaps Airflow's metadata database, while the run's chunk exports
# hold two per thread too. 16 callers still give one organisation its 5 calls at once and three organisations
# their 15 (the deployed run's), and keep 16 calls of a large run in flight, about 20 a second at Xero's
# 0.8 s: enough for the steps that use it (a few calls per organisation, bounded by each one's 60 a minute).
CALLERS_PER_TASK = 16
ORGANISATIONS_AT_ONCE = CALLERS_PER_TASK  # each organisation at work holds at least one caller

Outcome = Union[T, Exception]


@dataclass(frozen=True)
class Caller:
    """One database connection and one Xero client: one thread's at a time."""

    conn: psycopg.Connection
    client: XeroClient

    def close(self) -> None:
        try:
            if self.client is not None:
                self.client.close()
        finally:
            self.conn.close()


class Callers:
    """A step's callers: at most `size`, each opened the first time one is needed and none free, reused after."""

    def __init__(
        self, connect: Callable[[], psycopg.Connection], make_client: Callable[[], XeroClient], size: int,
        organisations: int = 0,
    ):
        """`organisations`: how many will each take a caller of their own (`wait=True`): until they have, as many
        callers are kept for them, never borrowed."""
        self._connect = connect
        self._make_client = make_client
        self._size = max(1, size)
        self._free: list[Caller] = []
        self._opened = 0
        self._kept = organisations
        self._changed = threading.Condition()

    def take(self, *, wait: bool) -> Caller | None:
        """An organisation's own caller (`wait`: blocks until one is free), or one to borrow (None when none is free
        beyond those kept for organisations yet to start): a free one, or a new one while fewer than `size` are
        open."""
        with self._changed:
            if wait:
                while not self._free and self._opened >= self._size:
                    self._changed.wait()
                self._kept = max(0, self._kept - 1)
            elif len(self._free) + self._size - self._opened <= self._kept:
                return None
            if self._free:
                return self._free.pop()
            self._opened += 1  # reserved; opened outside the lock
        try:
            conn = self._connect()
            try:
                return Caller(conn, self._make_client())
            except BaseException:
                conn.close()
                raise
        except BaseException:
            with self._changed:
                self._opened -= 1
                self._changed.notify()
            raise

    def give_back(self, caller: Caller) -> None:
        with self._changed:
            if caller.conn.closed or caller.conn.broken:  # lost with its database connection: open a new one later
                self._opened -= 1
                caller.close()
            else:
                self._free.append(caller)
            self._changed.notify()

    def close(self) -> None:
        with self._changed:
            free, self._free = self._free, []
            self._opened -= len(free)
        for caller in free:
            caller.close()


class Organisation:
    """One organisation's turn in a step: its own caller (`conn`, `client`: the step's reads and writes that are
    not calls to Xero go there), and `at_once` for calls that do not depend on each other."""

    def __init__(self, tenant_id: str, label: str, own: Caller, callers: Callers | None = None, width: int = 1):
        self.tenant_id = tenant_id
        self.label = label
        self.conn = own.conn
        self.client = own.client
        self._own = own
        self._callers = callers
        self.width = max(1, width) if callers is not None else 1

    def at_once(self, work: Callable[[psycopg.Connection, XeroClient, I], R], items: Iterable[I]) -> list[R]:
        """`work(conn, client, item)` for every item, up to the organisation's concurrency at once, each on a caller
        of its own; the results in the items' order.

        The organisation's own caller works the items; while more items wait than callers are at them, it
        borrows a free caller of the step (never waiting for one: without a free one, the items just wait
        their turn), up to `width` callers in all, each given back when no item is left for it. An item that
        raises stops the others from starting (those already started finish: their work, and their api_log
        rows, are kept); the first exception is raised once they have.
        """
        pending = deque(enumerate(items))
        results: dict[int, R] = {}
        failures: list[Exception] = []
        lock = threading.Lock()
        helping = 0  # borrowed callers at work

        def next_item() -> tuple[int, I] | None:
            with lock:
                return None if failures or not pending else pending.popleft()

        def work_through(caller: Caller) -> None:
            while (job := next_item()) is not None:
                index, item = job
                try:
                    results[index] = work(caller.conn, caller.client, item)
                except Exception as error:  # noqa: BLE001 - raised below, once the items under way have finished
                    with lock:
                        failures.append(error)

        def borrowed(caller: Caller) -> None:
            nonlocal helping
            try:
                work_through(caller)
            finally:
                with lock:
                    helping -= 1
                self._callers.give_back(caller)

        count = len(pending)
        can_borrow = True
        if self.width == 1 or count <= 1:
            work_through(self._own)
        else:
            with ThreadPoolExecutor(max_workers=self.width - 1, thread_name_prefix=f"calls-{self.tenant_id[:8]}") as pool:
                while True:
                    with lock:
                        # Items waiting beyond the one this thread takes next and those the helpers are at.
                        wanted = min(len(pending) - 1 - helping, self.width - 1 - helping) if not failures else 0
                    for _ in range(max(0, wanted if can_borrow else 0)):
                        try:
                            caller = self._callers.take(wait=False)
                        except Exception as error:  # noqa: BLE001 - e.g. the database's connections all in use
                            log.warning("organisation %s: works on the %d caller(s) it has; opening another failed: %s",
                                        self.label, 1 + helping, error)
                            can_borrow = False
                            break
                        if caller is None:
                            break
                        with lock:
                            helping += 1
                        pool.submit(borrowed, caller)
                    job = next_item()
                    if job is None:
                        break
                    index, item = job
                    try:
                        results[index] = work(self._own.conn, self._own.client, item)
                    except Exception as error:  # noqa: BLE001 - as above
                        with lock:
                            failures.append(error)
        if failures:
            raise failures[0]
        return [results[index] for index in range(count)]


OrganisationWork = Callable[[Organisation], T]
Runner = Callable[[list[tuple[str, str]], OrganisationWork], list[Outcome]]


def concurrency(client: XeroClient | None, tenant_id: str) -> int:
    """How many calls the organisation allows in progress at once, as the client's pacer plans with it."""
    return client.concurrency(tenant_id) if client is not None else OrganisationLimits().concurrent


def one_by_one(conn: psycopg.Connection, client: XeroClient) -> Runner:
    def run(tenants: list[tuple[str, str]], work: OrganisationWork) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for tenant_id, label in tenants:
            try:
                outcomes.append(work(Organisation(tenant_id, label, Caller(conn, client))))
            except Exception as error:  # noqa: BLE001 - the step decides, once every organisation had its turn
                outcomes.append(error)
        return outcomes

    return run


def side_by_side(
    connect: Callable[[], psycopg.Connection],
    make_client: Callable[[], XeroClient],
    at_once: int = ORGANISATIONS_AT_ONCE,
    callers: int = CALLERS_PER_TASK,
) -> Runner:
    """Organisations side by side (at most `at_once`, and no more than there are callers), each up to its
    concurrency, on at most `callers` callers in all (see CALLERS_PER_TASK)."""

    def run(tenants: list[tuple[str, str]], work: OrganisationWork) -> list[Outcome]:
        if not tenants:
            return []
        pool = Callers(connect, make_client, callers, organisations=len(tenants))

        def one(tenant_id: str, label: str) -> Outcome:
            try:
                own = pool.take(wait=True)  # borrowed ones always come back: no organisation waits on another for long
                try:
                    return work(Organisation(tenant_id, label, own, pool, concurrency(own.client, tenant_id)))
                finally:
                    pool.give_back(own)
            except Exception as error:  # noqa: BLE001 - as above
                return error

        try:
            workers = min(at_once, callers, len(tenants))
            with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="organisation") as threads:
                return list(threads.map(lambda tenant: one(*tenant), tenants))
        finally:
            pool.close()

    return run


def raise_unexpected(outcomes: list[Outcome], expected: type[Exception]) -> None:
    """Raise the first exception that is not of the kind the step handles (a bug, a lost database)."""
    for outcome in outcomes:
        if isinstance(outcome, Exception) and not isinstance(outcome, expected):
            raise outcome


def batches(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """`items` in consecutive slices of at most `size`."""
    return [items[start : start + size] for start in range(0, len(items), size)]
