"""How a backlog larger than one run drains by itself, each organisation at its own bound.

A run sends, per organisation, no more than it can: Airflow's map limit (shared fairly between
organisations) and what is left of the organisation's day at Xero (pacing.DayBudget). So a run selects
and validates only that much (`selection_capacity`), oldest first; documents held back earlier are
re-checked on top. What it leaves waits in Astute, Sent and outstanding, for the run that continues it.

When the run is over, `continuation` decides whether another run should follow at once (some
organisation has documents left for later, for lack of room, and calls left), later (every organisation
with documents left has spent its day: the next run starts when the first budget returns), or not at all
(nothing was left for lack of room, or the run sent nothing, so repeating it would not help; the daily
schedule tries again). Documents Xero refused, credit notes waiting for their invoice and documents held
back are not "left for later": a run that followed at once would only repeat them. The DAG triggers that
run with the same scope; Airflow's scheduler holds it until its `run_after`, so no worker waits for Xero's
day to return.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import psycopg

from astute_xero.export.chunk_planning import MAX_INVOICES_PER_CHUNK, share_chunk_budget
from astute_xero.xero.pacing import DayBudget
from astute_xero.sql import load_sql
from astute_xero.export.sync_state import RunScope

# Calls a run makes to an organisation before its chunks: its chart (4 reads). Kept out of the day's calls a
# run selects documents for; the few Contact calls a run may also make are known only later, when the plan
# fits the chunks to what is really left (documents selected beyond it wait, unsent, for the next run).
CALLS_BEFORE_CHUNKS = 4


@dataclass(frozen=True)
class Outstanding:
    tenant_id: str
    ready: int  # outstanding and not held back by an earlier validation
    held: int


def outstanding(conn: psycopg.Connection, run_id: int, scope: RunScope) -> dict[str, Outstanding]:
    """Per organisation of the run, what is outstanding in its window."""
    return {
        tenant_id: Outstanding(tenant_id, ready, held)
        for tenant_id, ready, held in conn.execute(
            load_sql("outstanding_by_tenant"),
            {"run_id": run_id, "date_from": scope.date_from, "date_to": scope.date_to},
        )
    }


def selection_capacity(
    waiting: dict[str, Outstanding], budgets: dict[str, DayBudget], map_limit: int
) -> dict[str, int]:
    """How many documents each organisation's run selects: the chunks its day's calls allow (less the calls
    before its chunks), within a fair share of the map limit, at 100 documents a chunk."""
    affordable = {
        tenant: min(math.ceil(w.ready / MAX_INVOICES_PER_CHUNK), max(0, budgets[tenant].remaining - CALLS_BEFORE_CHUNKS))
        for tenant, w in waiting.items()
    }
    return {tenant: chunks * MAX_INVOICES_PER_CHUNK for tenant, chunks in share_chunk_budget(affordable, map_limit).items()}


@dataclass(frozen=True)
class OrganisationBacklog:
    """What an organisation has left after a run, and when Xero lets it go on."""

    tenant_id: str
    left_for_later: int  # for lack of room: deferred, or in the run's window and not selected (run_left_for_later.sql)
    calls_left: int
    returns_at: dt.datetime | None  # when the day's budget returns (None: not spent)
    stopped: bool  # stopped for this run (403, Xero failing, the day spent at Xero): its reason is in the summary

    @property
    def budget(self) -> str:
        """Where the organisation's day at Xero stands, in words."""
        if self.calls_left <= 0 and self.returns_at:
            return f"Xero's daily limit is spent; its budget returns at {self.returns_at:%Y-%m-%d %H:%M %Z}"
        return f"{self.calls_left} call(s) of its day left"

    def describe(self) -> str:
        if not self.left_for_later:
            return "nothing left for lack of room"
        return f"{self.left_for_later} document(s) wait for the next run ({self.budget})"


def organisation_backlogs(
    conn: psycopg.Connection, run_id: int, scope: RunScope, budgets: dict[str, DayBudget]
) -> list[OrganisationBacklog]:
    """Per organisation of the run, what it leaves for later for lack of room. An organisation stopped for the
    run because its day is spent is not 'stopped' here: its backlog goes when the budget returns."""
    left = dict(conn.execute(load_sql("run_left_for_later"),
                             {"run_id": run_id, "date_from": scope.date_from, "date_to": scope.date_to}).fetchall())
    stopped = {row[0] for row in conn.execute(
        "SELECT DISTINCT tenant_id FROM xero_sync.run_entity WHERE run_id = %s AND decision = 'stopped'", (run_id,))}
    return [
        OrganisationBacklog(
            tenant, left.get(tenant, 0), budget.remaining, budget.returns_at,
            stopped=tenant in stopped and budget.remaining > 0,
        )
        for tenant, budget in sorted(budgets.items())
    ]


@dataclass(frozen=True)
class Continuation:
    """Whether a run should follow this one, and from when."""

    follow: bool
    not_before: dt.datetime | None
    reason: str


def continuation(backlogs: list[OrganisationBacklog], sent_this_run: int, now: dt.datetime) -> Continuation:
    waiting = [b for b in backlogs if b.left_for_later and not b.stopped]
    if not waiting:
        return Continuation(False, None, "nothing was left for lack of room that a run could send now (documents "
                                         "Xero refused, waiting for their invoice or held back wait for a fix)")
    if not sent_this_run:
        return Continuation(False, None, "this run sent nothing, so another would not either; the schedule tries again")
    able = [b for b in waiting if b.calls_left > CALLS_BEFORE_CHUNKS]
    if able:
        return Continuation(True, None, f"{sum(b.left_for_later for b in waiting)} document(s) of {len(waiting)} organisation(s) "
                                        f"wait and {len(able)} organisation(s) have calls left today")
    returns = [b.returns_at for b in waiting if b.returns_at]
    not_before = max(now, min(returns)) if returns else now
    return Continuation(True, not_before, f"{sum(b.left_for_later for b in waiting)} document(s) wait for Xero's daily budget, "
                                          f"which returns first at {not_before:%Y-%m-%d %H:%M %Z}")
