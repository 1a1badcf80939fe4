"""Work done for every organisation of a run: one by one, or side by side.

Xero's limits are per organisation, so organisations never need to wait for each other: a step that
calls Xero for each organisation (reading its chart, linking its Contacts, allocating its credit notes)
runs them side by side, each with its own database connection and Xero client (neither is shared
between threads), each paced by its own budget. `one_by_one` runs them in turn on one connection and
client (the tests' and the bench's way to drive a step; the DAG's tasks use `side_by_side`).

Each organisation's outcome is its result or the exception it raised: the step decides what an
exception means (the organisation stopped, left for Airflow's retry, or a bug to raise) once every
organisation has had its turn, so one organisation's trouble never cuts another's work short.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import TypeVar, Union

import psycopg

from astute_xero.xero.client import XeroClient

T = TypeVar("T")

# Threads waiting on Xero, not computing: each holds two database connections (its own and its pacer's)
# and a token read. 16 keeps a worker's connection count modest; organisations beyond it queue, and
# each still runs at its own bound.
ORGANISATIONS_AT_ONCE = 16

OrganisationWork = Callable[[psycopg.Connection, XeroClient, str, str], T]  # (conn, client, tenant_id, label)
Outcome = Union[T, Exception]
Runner = Callable[[list[tuple[str, str]], OrganisationWork], list[Outcome]]


def one_by_one(conn: psycopg.Connection, client: XeroClient) -> Runner:
    def run(tenants: list[tuple[str, str]], work: OrganisationWork) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for tenant_id, label in tenants:
            try:
                outcomes.append(work(conn, client, tenant_id, label))
            except Exception as error:  # noqa: BLE001 - the step decides, once every organisation had its turn
                outcomes.append(error)
        return outcomes

    return run


def side_by_side(
    connect: Callable[[], psycopg.Connection],
    make_client: Callable[[], XeroClient],
    at_once: int = ORGANISATIONS_AT_ONCE,
) -> Runner:
    def run(tenants: list[tuple[str, str]], work: OrganisationWork) -> list[Outcome]:
        def one(tenant_id: str, label: str) -> Outcome:
            try:
                with closing(connect()) as conn, closing(make_client()) as client:
                    return work(conn, client, tenant_id, label)
            except Exception as error:  # noqa: BLE001 - as above
                return error

        if not tenants:
            return []
        with ThreadPoolExecutor(max_workers=min(at_once, len(tenants)), thread_name_prefix="organisation") as pool:
            return list(pool.map(lambda tenant: one(*tenant), tenants))

    return run


def raise_unexpected(outcomes: list[Outcome], expected: type[Exception]) -> None:
    """Raise the first exception that is not of the kind the step handles (a bug, a lost database)."""
    for outcome in outcomes:
        if isinstance(outcome, Exception) and not isinstance(outcome, expected):
            raise outcome
