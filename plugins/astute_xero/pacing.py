"""Xero's rate limits as a budget shared by every worker, through PostgreSQL.

Per organisation Xero allows 60 calls a minute and 5 in progress at once. The
`xero_api` pool caps our tasks, but several tasks (and the validation and
contact steps) can call one organisation at the same moment, so each call first
takes a concurrency slot (a session advisory lock: released with the connection
if the worker dies) and a call from the organisation's minute budget (a locked
row in xero_sync.rate_budget). A 429 blocks the budget for every worker until
its Retry-After has passed.

No wait is unbounded: a worker that cannot get a slot within MAX_SLOT_WAIT, or a
call from the budget within MAX_BUDGET_WAIT, raises PacingTimeout naming the
organisation and what it waited for (nothing was sent, so a retry is safe).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from astute_xero.sql import load_sql

CALLS_PER_MINUTE = 55  # Xero's 60, less a margin for its window not being ours
CONCURRENT_CALLS = 5
WINDOW = dt.timedelta(seconds=60)
SLOT_POLL_S = 0.05
# Longer than Xero's minute window: a free budget is always reached sooner unless something is wrong
# (e.g. a Retry-After that outlasts it, which fails at once).
MAX_BUDGET_WAIT = dt.timedelta(minutes=10)
# A slot is held through its holder's own budget wait (up to MAX_BUDGET_WAIT) and its call (up to the
# client's 10 s connect + 120 s read timeouts), so waiting for one may take about that long.
MAX_SLOT_WAIT = dt.timedelta(minutes=15)


class PacingTimeout(RuntimeError):
    """A call to an organisation waited longer than its bound for a slot or for the budget. Nothing was sent."""


class Pacer:
    """Takes a slot and a budgeted call before each request to an organisation."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection],
        *,
        per_minute: int = CALLS_PER_MINUTE,
        concurrent: int = CONCURRENT_CALLS,
        window: dt.timedelta = WINDOW,
        sleep: Callable[[float], None] = time.sleep,
        max_slot_wait: dt.timedelta = MAX_SLOT_WAIT,
        max_budget_wait: dt.timedelta = MAX_BUDGET_WAIT,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._connect = connect
        self._conn: psycopg.Connection | None = None
        self._per_minute = per_minute
        self._window = window
        self._concurrent = concurrent
        self._sleep = sleep
        self._max_slot_wait_s = max_slot_wait.total_seconds()
        self._max_budget_wait_s = max_budget_wait.total_seconds()
        self._clock = clock
        self.waited_s = 0.0

    @property
    def _db(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    @contextmanager
    def call(self, tenant_id: str) -> Iterator[None]:
        slot = self._take_slot(tenant_id)
        try:
            self._take_budget(tenant_id)
            yield
        finally:
            self._db.execute(load_sql("rate_slot_release"), {"tenant_id": tenant_id, "slot": slot})

    def block(self, tenant_id: str, seconds: float) -> None:
        """Xero said 'minute limit': no worker calls this organisation for `seconds`."""
        with self._db.transaction():
            self._db.execute(load_sql("rate_budget_ensure"), {"tenant_id": tenant_id})
            started, calls, blocked_until, now = self._db.execute(
                load_sql("rate_budget_lock"), {"tenant_id": tenant_id}
            ).fetchone()
            until = now + dt.timedelta(seconds=seconds)
            self._update(tenant_id, started, calls, max(filter(None, [blocked_until, until])))

    def _take_slot(self, tenant_id: str) -> int:
        started = self._clock()
        while True:
            for slot in range(self._concurrent):
                (taken,) = self._db.execute(load_sql("rate_slot_try"), {"tenant_id": tenant_id, "slot": slot}).fetchone()
                if taken:
                    return slot
            waited = self._clock() - started
            if waited >= self._max_slot_wait_s:
                raise PacingTimeout(
                    f"waited {waited:.1f} s for one of Xero organisation {tenant_id}'s call slots "
                    f"({_calls(self._concurrent)} in progress at once allowed; every slot held by another worker) "
                    "and gave up: the bound is "
                    f"{self._max_slot_wait_s:g} s. Nothing was sent. A worker may be stuck in a call; its slot is "
                    "freed when its database connection closes."
                )
            self._wait(min(SLOT_POLL_S, self._max_slot_wait_s - waited))

    def _take_budget(self, tenant_id: str) -> None:
        started = self._clock()
        while True:
            with self._db.transaction():
                self._db.execute(load_sql("rate_budget_ensure"), {"tenant_id": tenant_id})
                window_started, calls, blocked_until, now = self._db.execute(
                    load_sql("rate_budget_lock"), {"tenant_id": tenant_id}
                ).fetchone()
                blocked = blocked_until is not None and blocked_until > now
                if blocked:
                    wait = (blocked_until - now).total_seconds()
                elif now - window_started >= self._window:
                    self._update(tenant_id, now, 1, blocked_until)
                    return
                elif calls < self._per_minute:
                    self._update(tenant_id, window_started, calls + 1, blocked_until)
                    return
                else:
                    wait = (window_started + self._window - now).total_seconds()
            waited = self._clock() - started
            if blocked and waited + wait > self._max_budget_wait_s:
                # A block only ever grows: the wait cannot end within the bound, so say so now.
                raise PacingTimeout(
                    f"Xero organisation {tenant_id} is blocked by its minute limit (a 429's Retry-After) for another "
                    f"{wait:.0f} s, until {blocked_until:%Y-%m-%d %H:%M:%S %Z}: longer than the bound of "
                    f"{self._max_budget_wait_s:g} s on waiting for its budget. Nothing was sent."
                )
            if waited >= self._max_budget_wait_s:
                raise PacingTimeout(
                    f"waited {waited:.1f} s for a call from Xero organisation {tenant_id}'s minute budget "
                    f"({_calls(self._per_minute)} per {self._window.total_seconds():g} s, shared by every worker) "
                    f"and gave up: the bound is {self._max_budget_wait_s:g} s. Nothing was sent."
                )
            self._wait(min(max(wait, SLOT_POLL_S), self._max_budget_wait_s - waited))

    def _update(self, tenant_id: str, started: dt.datetime, calls: int, blocked_until: dt.datetime | None) -> None:
        self._db.execute(
            load_sql("rate_budget_update"),
            {"tenant_id": tenant_id, "window_started_at": started, "calls": calls, "blocked_until": blocked_until},
        )

    def _wait(self, seconds: float) -> None:
        self.waited_s += seconds
        self._sleep(seconds)


def _calls(n: int) -> str:
    return f"{n} call" if n == 1 else f"{n} calls"
