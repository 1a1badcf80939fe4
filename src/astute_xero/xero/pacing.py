"""Xero's rate limits as budgets shared by every worker, through PostgreSQL, per organisation.

Per organisation Xero allows 5 calls in progress at once, 60 a minute and 5,000 a day (1,000 on its
Starter tier); per app, 10,000 a minute across every organisation. The limits come from the
xero_default connection (`XeroLimits.from_config`: Xero's published figures by default, with
per-organisation overrides). Before each request a worker takes one of the organisation's concurrency
slots (a lease, astute_xero.leases: renewed while it waits, held for at most the call's own bound after
that, so a slot whose holder died comes back within that bound, whatever its connection does), then a call from
its minute, its day and the app's minute (locked rows in xero_sync.rate_budget). After each answer
the counts are corrected from what Xero says is left (`X-MinLimit-Remaining`, `X-DayLimit-Remaining`,
`X-AppMinLimit-Remaining`). A 429 blocks the budget for every worker until its Retry-After has
passed, and aligns our minute with Xero's.

Waiting costs the database next to nothing, and waiters are served in order (issue 22). A worker that finds every
slot taken queues: it takes a numbered ticket (xero_sync.slot_ticket, migration 015: a row that expires unless
renewed, so a waiter that died leaves the queue within TICKET_TTL) and blocks on its connection without sending
anything, LISTENing on the organisation's channel once it is near the front (every NOTIFY wakes each listening
session of the database for a moment). Whoever gives a slot back NOTIFYs the oldest live tickets, as many as there
are free slots, and only they may take one (a newcomer takes a free slot at once only if nobody waits). A waiter
also wakes every WAITER_WAKE_S or so (renewing its ticket and looking for its turn: one statement) and, at the front,
when a held slot or a ticket ahead of it expires (a dead holder or waiter), so correctness never depends on a
notification arriving: behind a transaction-mode pooler, where LISTEN hears nothing, a hand-over takes up to
WAITER_WAKE_S instead of milliseconds, in the same order and within the same limits. A wait for the minute sleeps
until the minute has a call.

Organisations never wait for each other: each has its own slots, queue and rows. No wait is unbounded: a
worker that cannot get a slot within MAX_SLOT_WAIT, or a call from the minute budget within
MAX_BUDGET_WAIT, raises PacingTimeout naming the organisation and what it waited for (nothing was
sent, so a retry is safe). The caller may bound both waits tighter (`max_wait`: the time its task has left).
A spent day is not waited for: DayBudgetSpent says when it returns.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from typing import Any

import psycopg
from psycopg import sql

from astute_xero import leases
from astute_xero.sql import load_sql

# Our minute and day are a little longer than Xero's: our window opens when a call is taken, Xero's when
# it arrives (after the SDK has serialised up to 100 invoices and sent them: under load, up to about a
# second), so a call taken at the very start of our next window never lands in the end of Xero's last
# (which Xero would refuse with a 429). Longer by 1/60, and by at least ARRIVAL_MARGIN: 61 s for Xero's
# minute (1.6 % of the rate), 7 s for the benchmark's scaled 6 s minute.
WINDOW_SKEW = 1 / 60
ARRIVAL_MARGIN = dt.timedelta(seconds=1)
# A waiter for a slot wakes (one statement: its ticket renewed, its turn checked) at least this often, and sooner
# when told it is its turn. A ticket lives TICKET_TTL unless renewed: a waiter that died leaves the queue within it.
WAITER_WAKE_S = 2.5
TICKET_TTL = dt.timedelta(seconds=10)
# Waiters LISTEN when fewer than this many times the organisation's slots are queued ahead of them: a waiter further
# back starts listening on a periodic wake-up, before it reaches the front unless the queue moves faster than
# LISTEN_DEPTH x 5 hand-overs per WAITER_WAKE_S (8 a second; Xero's minute allows 1 a second).
LISTEN_DEPTH = 4
EXPIRY_MARGIN_S = 0.02  # a held slot or ticket ahead expiring: look just after, on the database's clock
BUDGET_RECHECK_S = 0.05  # the least pause between two looks at the budget (its next call is due then)
# Longer than Xero's minute window: a free budget is always reached sooner unless something is wrong
# (e.g. a Retry-After that outlasts it, which fails at once).
MAX_BUDGET_WAIT = dt.timedelta(minutes=10)
# A slot is held through its holder's own budget wait (up to MAX_BUDGET_WAIT) and its call (up to the
# client's 10 s connect + 120 s read timeouts), so waiting for one may take about that long.
MAX_SLOT_WAIT = dt.timedelta(minutes=15)
# A slot is held through the call: its lease lasts the call's bound (connect and read timeouts) and this margin.
SLOT_MARGIN = dt.timedelta(seconds=30)
# A slot's lease is renewed before the call only when this long has passed since it was taken or last renewed:
# a call that got its budget at once sends with the lease it took (a statement less), at most this much older.
SLOT_RENEW_AFTER_S = 1.0
DEFAULT_CALL_BOUND = dt.timedelta(seconds=130)  # the client passes its own (connect + read timeouts)


@dataclass(frozen=True)
class OrganisationLimits:
    """What Xero allows one organisation (defaults: Xero's published limits)."""

    per_minute: int = 60
    per_day: int = 5000
    concurrent: int = 5
    minute_s: float = 60.0
    day_s: float = 86400.0

    @property
    def window(self) -> dt.timedelta:
        return _longer(self.minute_s)

    @property
    def day(self) -> dt.timedelta:
        return _longer(self.day_s)


def _longer(seconds: float) -> dt.timedelta:
    """One of Xero's windows as we count it: see WINDOW_SKEW."""
    return dt.timedelta(seconds=seconds) + max(dt.timedelta(seconds=seconds * WINDOW_SKEW), ARRIVAL_MARGIN)


@dataclass(frozen=True)
class XeroLimits:
    """Xero's limits for one app: every organisation's (with overrides, e.g. the Starter tier's 1,000 calls
    a day), and the app-wide minute across all of them."""

    default: OrganisationLimits = OrganisationLimits()
    app_per_minute: int = 10000
    organisations: Mapping[str, OrganisationLimits] = field(default_factory=dict)

    def of(self, tenant_id: str) -> OrganisationLimits:
        return self.organisations.get(tenant_id, self.default)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> XeroLimits:
        """The `limits` object of the xero_default connection's extra, e.g.
        {"per_day": 5000, "organisations": {"<tenant id>": {"per_day": 1000}}}; every key optional.

        Unknown keys and values that are not positive numbers are refused with what is wrong, so that a
        typo never silently leaves an organisation planned at Xero's default.
        """
        config = dict(config or {})
        names = {f.name for f in fields(OrganisationLimits)}
        overrides = config.pop("organisations", None) or {}
        app_per_minute = config.pop("app_per_minute", 10000)

        def organisation(base: OrganisationLimits, values: Mapping[str, Any], where: str) -> OrganisationLimits:
            unknown = sorted(set(values) - names)
            if unknown:
                raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}.")
            for name, value in values.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    raise ValueError(f"{where}.{name} must be a positive number, not {value!r}.")
            converted = {k: (float(v) if k.endswith("_s") else int(v)) for k, v in values.items()}
            return replace(base, **converted)

        if isinstance(app_per_minute, bool) or not isinstance(app_per_minute, int) or app_per_minute <= 0:
            raise ValueError(f"limits.app_per_minute must be a positive integer, not {app_per_minute!r}.")
        if not isinstance(overrides, Mapping):
            raise ValueError("limits.organisations must map Xero tenant ids to their limits.")
        default = organisation(OrganisationLimits(), config, "limits")
        return cls(
            default=default,
            app_per_minute=app_per_minute,
            organisations={
                str(tenant): organisation(default, values or {}, f"limits.organisations[{tenant}]")
                for tenant, values in overrides.items()
            },
        )


@dataclass(frozen=True)
class DayBudget:
    """What is left of an organisation's day, by our count corrected with Xero's headers."""

    tenant_id: str
    remaining: int
    per_day: int
    returns_at: dt.datetime | None  # when the day's calls come back (None: none used yet)


class PacingTimeout(RuntimeError):
    """A call to an organisation waited longer than its bound for a slot or for the budget. Nothing was sent."""


class DayBudgetSpent(RuntimeError):
    """The organisation's calls of the day are used up (by our count, Xero's headers or its 429). Nothing was sent."""

    def __init__(self, message: str, returns_at: dt.datetime | None):
        super().__init__(message)
        self.returns_at = returns_at


class Pacer:
    """Takes a slot and a budgeted call (minute, day, app minute) before each request to an organisation."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection],
        *,
        limits: XeroLimits = XeroLimits(),
        app_key: str = "app",
        sleep: Callable[[float], None] = time.sleep,
        max_slot_wait: dt.timedelta = MAX_SLOT_WAIT,
        max_budget_wait: dt.timedelta = MAX_BUDGET_WAIT,
        slot_margin: dt.timedelta = SLOT_MARGIN,
        clock: Callable[[], float] = time.monotonic,
        ticket_ttl: dt.timedelta = TICKET_TTL,
    ):
        self._connect = connect
        self._conn: psycopg.Connection | None = None
        self.limits = limits
        self._app_row = f"app:{app_key}"
        self._sleep = sleep
        self._max_slot_wait_s = max_slot_wait.total_seconds()
        self._max_budget_wait_s = max_budget_wait.total_seconds()
        self._slot_margin = slot_margin
        self._clock = clock
        self._ticket_ttl = ticket_ttl
        self._wake_s = min(WAITER_WAKE_S, ticket_ttl.total_seconds() / 4)
        self._listening: set[str] = set()
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
    def call(
        self, tenant_id: str, *, hold_for: dt.timedelta = DEFAULT_CALL_BOUND, max_wait: dt.timedelta | None = None
    ) -> Iterator[None]:
        """A slot and a budgeted call for one request that lasts at most `hold_for`, waiting at most `max_wait`
        (besides the pacer's own bounds) for them."""
        self._check_day(tenant_id)  # a spent day is known before a slot is taken
        slot = _Slot(tenant_id, leases.new_holder(), hold_for + self._slot_margin)
        started = self._clock()
        limit = None if max_wait is None else max_wait.total_seconds()
        self._take_slot(slot, limit)
        try:
            self._take_budget(slot, None if limit is None else limit - (self._clock() - started))
            self._keep_slot(slot)  # its time-to-live counts from the request, not from the wait before it
            yield
        finally:
            self._db.execute(load_sql("pacing_release_slot"), {
                "tenant_id": tenant_id, "holder": slot.holder, "slot_key": slot.key,
                "concurrent": self.limits.of(tenant_id).concurrent})

    def block(self, tenant_id: str, seconds: float) -> None:
        """Xero said 'minute limit' with a Retry-After: no worker calls this organisation for `seconds`, and our
        minute restarts when Xero's does (the count full until then), so the windows stay aligned."""
        window = self.limits.of(tenant_id).window
        with self._budget_transaction():
            budget = self._lock(tenant_id)
            until = budget["now"] + dt.timedelta(seconds=seconds)
            until = max(filter(None, [budget["blocked_until"], until]))
            self._update(tenant_id, budget, window_started_at=until - window,
                         calls=self.limits.of(tenant_id).per_minute, blocked_until=until)

    def block_day(self, tenant_id: str, seconds: float | None) -> None:
        """Xero said 'day limit': the organisation's day is spent until its Retry-After (else a whole day)."""
        limits = self.limits.of(tenant_id)
        with self._budget_transaction():
            budget = self._lock(tenant_id)
            until = budget["now"] + (dt.timedelta(seconds=seconds) if seconds else limits.day)
            self._update(tenant_id, budget, day_calls=limits.per_day, day_blocked_until=until,
                         day_started_at=budget["day_started_at"] or budget["now"])

    def observe(self, tenant_id: str, started_at: dt.datetime, rate_limits: Mapping[str, int]) -> None:
        """Correct our counts with what Xero says is left after a call that started at `started_at` (each
        count only ever raised, and only for a window that was already open when the call started)."""
        limits = self.limits.of(tenant_id)
        minute_left = rate_limits.get("X-MinLimit-Remaining")
        day_left = rate_limits.get("X-DayLimit-Remaining")
        app_left = rate_limits.get("X-AppMinLimit-Remaining")
        if minute_left is not None or day_left is not None:
            self._db.execute(load_sql("rate_budget_observe"), {
                "tenant_id": tenant_id,
                "started_at": started_at,
                "minute_used": None if minute_left is None else limits.per_minute - minute_left,
                "day_used": None if day_left is None else limits.per_day - day_left,
            })
        if app_left is not None:
            self._db.execute(load_sql("rate_budget_observe_app"), {
                "app_row": self._app_row, "started_at": started_at, "app_used": self.limits.app_per_minute - app_left,
            })

    def day_budgets(self, tenant_ids: list[str]) -> dict[str, DayBudget]:
        """What is left of each organisation's day, for planning a run inside it."""
        rows = {
            tenant: (day_started_at, day_calls, day_blocked_until, now)
            for tenant, day_started_at, day_calls, day_blocked_until, now in self._db.execute(
                load_sql("rate_budget_days"), {"tenant_ids": tenant_ids}
            )
        }
        budgets = {}
        for tenant in tenant_ids:
            limits = self.limits.of(tenant)
            if tenant not in rows:
                budgets[tenant] = DayBudget(tenant, limits.per_day, limits.per_day, None)
                continue
            day_started_at, day_calls, day_blocked_until, now = rows[tenant]
            budgets[tenant] = _day_budget(tenant, limits, day_started_at, day_calls, day_blocked_until, now)
        return budgets

    # --- internals ------------------------------------------------------------------------
    def _check_day(self, tenant_id: str) -> None:
        budget = self.day_budgets([tenant_id])[tenant_id]
        if budget.remaining <= 0:
            raise DayBudgetSpent(_day_spent_message(budget), budget.returns_at)

    def _take_slot(self, slot: _Slot, limit: float | None) -> None:
        """A slot, in turn: taken at once if one is free and nobody waits, else after a ticket in the organisation's
        queue (migration 015) comes to the front. Waiting costs one statement per wake-up: when told it is our turn
        (NOTIFY), when the head of the queue must look at a slot or ticket expiring, and every `_wake_s` in any case
        (renewing the ticket; and the whole hand-over where notifications do not arrive, behind a pooler)."""
        concurrent = self.limits.of(slot.tenant_id).concurrent
        bound = self._max_slot_wait_s if limit is None else min(self._max_slot_wait_s, max(0.0, limit))
        started = self._clock()
        ticket = None
        try:
            while True:
                key, ticket, channel, wake_in, ahead = self._db.execute(load_sql("pacing_take_slot"), {
                    "tenant_id": slot.tenant_id, "holder": slot.holder, "concurrent": concurrent,
                    "slot_ttl": slot.ttl, "ticket": ticket, "ticket_ttl": self._ticket_ttl,
                }).fetchone()
                if key is not None:
                    slot.key, slot.renewed_at = key, self._clock()
                    return
                # Only waiters near the front listen (each NOTIFY wakes every listening session of the database
                # for a moment, about 30 us each): the others move up on their periodic wake-up.
                if ahead < LISTEN_DEPTH * concurrent and self._listen(channel):
                    continue  # our turn may have been announced before we listened: look once more
                waited = self._clock() - started
                if waited >= bound:
                    raise PacingTimeout(
                        f"waited {waited:.1f} s for one of Xero organisation {slot.tenant_id}'s call slots "
                        f"({_calls(concurrent)} in progress at once allowed; every slot held by another worker) "
                        f"and gave up: the bound is {bound:g} s"
                        + ("" if bound == self._max_slot_wait_s else ", the time this task has left for a call")
                        + ". Nothing was sent. A worker may be stuck in a call; a slot whose worker died comes back "
                        "within the call's own time bound."
                    )
                # Jittered, so that the waiters who queued together do not all wake in the same instant.
                pause = min(self._wake_s * random.uniform(0.75, 1.0), bound - waited)
                if wake_in is not None:
                    pause = min(pause, max(wake_in, 0.0) + EXPIRY_MARGIN_S)
                self._await_turn(channel, ticket, pause)
        finally:
            if ticket is not None and slot.key == "":
                self._leave_queue(slot, ticket, concurrent)
            self._unlisten()

    def _listen(self, channel: str) -> bool:
        """LISTEN on the organisation's channel while this call waits; True if it was not listening yet."""
        if channel in self._listening:
            return False
        self._db.execute(sql.SQL(load_sql("pacing_listen")).format(channel=sql.Identifier(channel)))
        self._listening.add(channel)
        return True

    def _unlisten(self) -> None:
        for channel in list(self._listening):
            self._listening.discard(channel)
            try:
                if self._conn is not None and not self._conn.closed:
                    self._conn.execute(sql.SQL(load_sql("pacing_unlisten")).format(channel=sql.Identifier(channel)))
            except psycopg.Error:  # the connection is gone, and its LISTEN with it
                pass

    def _await_turn(self, channel: str, ticket: int, seconds: float) -> None:
        """Block (no statement sent) until the organisation's channel names our ticket, or `seconds` pass."""
        mine = str(ticket)
        started = time.monotonic()
        try:
            for notify in self._db.notifies(timeout=max(seconds, 0.0)):
                if notify.channel == channel and mine in notify.payload.split(","):
                    break
        finally:
            self.waited_s += time.monotonic() - started

    def _leave_queue(self, slot: _Slot, ticket: int, concurrent: int) -> None:
        try:
            self._db.execute(load_sql("pacing_leave_queue"), {
                "tenant_id": slot.tenant_id, "holder": slot.holder, "ticket": ticket, "concurrent": concurrent})
        except psycopg.Error:  # the ticket expires on its own within its time-to-live
            pass

    def _keep_slot(self, slot: _Slot) -> None:
        """Renew the slot's lease while its holder waits for the budget (or is about to call), once SLOT_RENEW_AFTER_S
        (or a tenth of a shorter time-to-live) has passed since it was taken or last renewed: before that, its
        time-to-live is as good as new, its margin (SLOT_MARGIN) being far longer."""
        now = self._clock()
        if now - slot.renewed_at < min(SLOT_RENEW_AFTER_S, slot.ttl.total_seconds() / 10):
            return
        if not leases.renew(self._db, slot.holder, [slot.key], slot.ttl):
            raise PacingTimeout(
                f"lost Xero organisation {slot.tenant_id}'s call slot while waiting for its budget (this worker "
                "stalled past the slot's time-to-live). Nothing was sent."
            )
        slot.renewed_at = now

    def _take_budget(self, slot: _Slot, limit: float | None) -> None:
        tenant_id = slot.tenant_id
        limits = self.limits.of(tenant_id)
        bound = self._max_budget_wait_s if limit is None else min(self._max_budget_wait_s, max(0.0, limit))
        started = self._clock()
        while True:
            self._keep_slot(slot)
            with self._budget_transaction():
                budget = self._lock(tenant_id)
                now = budget["now"]
                day = _day_budget(tenant_id, limits, budget["day_started_at"], budget["day_calls"],
                                  budget["day_blocked_until"], now)
                if day.remaining <= 0:
                    raise DayBudgetSpent(_day_spent_message(day), day.returns_at)
                wait, blocked = self._minute_wait(budget, limits.per_minute, limits.window)
                app_wait = 0.0
                if wait == 0:
                    app = self._lock(self._app_row)
                    app_wait, _ = self._minute_wait(app, self.limits.app_per_minute, self.limits.default.window)
                    if app_wait == 0:
                        self._count(self._app_row, app, self.limits.default.window)
                        self._count(tenant_id, budget, limits.window, day=limits)
                        return
                wait = max(wait, app_wait)
            waited = self._clock() - started
            bounded_by = f"the bound of {bound:g} s on waiting for its budget" + (
                "" if bound == self._max_budget_wait_s else " (the time this task has left for a call)")
            if blocked and waited + wait > bound:
                # A block only ever grows: the wait cannot end within the bound, so say so now.
                raise PacingTimeout(
                    f"Xero organisation {tenant_id} is blocked by its minute limit (a 429's Retry-After) for another "
                    f"{wait:.0f} s, until {budget['blocked_until']:%Y-%m-%d %H:%M:%S %Z}: longer than {bounded_by}. "
                    "Nothing was sent."
                )
            if waited + wait > bound:
                raise PacingTimeout(
                    f"a call from Xero organisation {tenant_id}'s minute budget ({_calls(limits.per_minute)} per "
                    f"{limits.minute_s:g} s, shared by every worker{'; the app-wide minute was full' if app_wait else ''})"
                    f" would come in {wait:.1f} s, after {waited:.1f} s of waiting: longer than {bounded_by}. "
                    "Nothing was sent."
                )
            # Sleep until the minute has a call (one statement per wake-up, not a poll), renewing the slot meanwhile.
            self._wait(min(max(wait, BUDGET_RECHECK_S), bound - waited, slot.ttl.total_seconds() / 3))

    @staticmethod
    def _minute_wait(budget: dict[str, Any], per_minute: int, window: dt.timedelta) -> tuple[float, bool]:
        """(seconds to wait before this row's minute has a call, whether a 429's block is why); 0: now."""
        now = budget["now"]
        if budget["blocked_until"] is not None and budget["blocked_until"] > now:
            return (budget["blocked_until"] - now).total_seconds(), True
        if now - budget["window_started_at"] >= window or budget["calls"] < per_minute:
            return 0.0, False
        return (budget["window_started_at"] + window - now).total_seconds(), False

    def _count(self, row: str, budget: dict[str, Any], window: dt.timedelta, day: OrganisationLimits | None = None) -> None:
        """One call more in the row's minute (a new minute when the last has passed) and, for an organisation,
        in its day (a new day likewise)."""
        now = budget["now"]
        changes: dict[str, Any] = (
            {"window_started_at": now, "calls": 1} if now - budget["window_started_at"] >= window
            else {"calls": budget["calls"] + 1}
        )
        if day is not None:
            day_open = budget["day_started_at"] is not None and now - budget["day_started_at"] < day.day
            changes.update({"day_calls": budget["day_calls"] + 1} if day_open
                           else {"day_started_at": now, "day_calls": 1, "day_blocked_until": None})
        self._update(row, budget, **changes)

    @contextmanager
    def _budget_transaction(self) -> Iterator[None]:
        """A transaction that locks budget rows (_lock): if this worker stops inside it (killed, its host gone), the
        server ends its session after a short idle (transaction_dies_with_holder), and the locks go with it."""
        with self._db.transaction():
            self._db.execute(load_sql("transaction_dies_with_holder"))
            yield

    def _lock(self, row: str) -> dict[str, Any]:
        """The row's budget, locked until the caller's _budget_transaction ends; the row is made the first time an
        organisation (or the app) is paced."""
        values = self._db.execute(load_sql("rate_budget_lock"), {"tenant_id": row}).fetchone()
        if values is None:
            self._db.execute(load_sql("rate_budget_ensure"), {"tenant_id": row})
            values = self._db.execute(load_sql("rate_budget_lock"), {"tenant_id": row}).fetchone()
        names = ("window_started_at", "calls", "blocked_until", "day_started_at", "day_calls", "day_blocked_until", "now")
        return dict(zip(names, values))

    def _update(self, row: str, budget: dict[str, Any], **changes: Any) -> None:
        values = {**budget, **changes}
        values.pop("now")
        self._db.execute(load_sql("rate_budget_update"), {"tenant_id": row, **values})

    def _wait(self, seconds: float) -> None:
        self.waited_s += seconds
        self._sleep(seconds)


@dataclass
class _Slot:
    """One of an organisation's call slots, as one call holds it (its lease key once taken)."""

    tenant_id: str
    holder: str
    ttl: dt.timedelta
    key: str = ""
    renewed_at: float = 0.0  # the pacer's clock when the lease was taken or last renewed


def _day_budget(tenant_id: str, limits: OrganisationLimits, day_started_at: dt.datetime | None, day_calls: int,
                day_blocked_until: dt.datetime | None, now: dt.datetime) -> DayBudget:
    if day_blocked_until is not None and day_blocked_until > now:
        return DayBudget(tenant_id, 0, limits.per_day, day_blocked_until)
    if day_started_at is None or now - day_started_at >= limits.day:
        return DayBudget(tenant_id, limits.per_day, limits.per_day, None)
    return DayBudget(tenant_id, max(0, limits.per_day - day_calls), limits.per_day, day_started_at + limits.day)


def _day_spent_message(budget: DayBudget) -> str:
    returns = f", until {budget.returns_at:%Y-%m-%d %H:%M %Z}" if budget.returns_at else ""
    return (
        f"Xero organisation {budget.tenant_id} has used its {_calls(budget.per_day)} of the day{returns} (Xero's "
        "daily limit, counted by every worker and corrected from Xero's X-DayLimit-Remaining). Nothing was sent; "
        "its remaining invoices and credit notes go when its budget returns."
    )


def _calls(n: int) -> str:
    return f"{n} call" if n == 1 else f"{n} calls"
