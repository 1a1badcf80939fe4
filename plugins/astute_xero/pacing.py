"""Xero's rate limits as a budget shared by every worker, through PostgreSQL.

Per organisation Xero allows 60 calls a minute and 5 in progress at once. The
`xero_api` pool caps our tasks, but several tasks (and the validation and
contact steps) can call one organisation at the same moment, so each call first
takes a concurrency slot (a session advisory lock: released with the connection
if the worker dies) and a call from the organisation's minute budget (a locked
row in xero_sync.rate_budget). A 429 blocks the budget for every worker until
its Retry-After has passed.
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
    ):
        self._connect = connect
        self._conn: psycopg.Connection | None = None
        self._per_minute = per_minute
        self._window = window
        self._concurrent = concurrent
        self._sleep = sleep
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
        while True:
            for slot in range(self._concurrent):
                (taken,) = self._db.execute(load_sql("rate_slot_try"), {"tenant_id": tenant_id, "slot": slot}).fetchone()
                if taken:
                    return slot
            self._wait(SLOT_POLL_S)

    def _take_budget(self, tenant_id: str) -> None:
        while True:
            with self._db.transaction():
                self._db.execute(load_sql("rate_budget_ensure"), {"tenant_id": tenant_id})
                started, calls, blocked_until, now = self._db.execute(
                    load_sql("rate_budget_lock"), {"tenant_id": tenant_id}
                ).fetchone()
                if blocked_until is not None and blocked_until > now:
                    wait = (blocked_until - now).total_seconds()
                elif now - started >= self._window:
                    self._update(tenant_id, now, 1, blocked_until)
                    return
                elif calls < self._per_minute:
                    self._update(tenant_id, started, calls + 1, blocked_until)
                    return
                else:
                    wait = (started + self._window - now).total_seconds()
            self._wait(max(wait, SLOT_POLL_S))

    def _update(self, tenant_id: str, started: dt.datetime, calls: int, blocked_until: dt.datetime | None) -> None:
        self._db.execute(
            load_sql("rate_budget_update"),
            {"tenant_id": tenant_id, "window_started_at": started, "calls": calls, "blocked_until": blocked_until},
        )

    def _wait(self, seconds: float) -> None:
        self.waited_s += seconds
        self._sleep(seconds)
