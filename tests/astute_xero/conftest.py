"""The export steps without Airflow: the domain on a real PostgreSQL and the sandbox over HTTP."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from astute_xero.export import allocation, chunk_planning, contacts, sync_state
from astute_xero.report import run_summary
from astute_xero.export.chunk_export import ChunkKey, export_chunk
from astute_xero.operations.migrations import apply_migrations
from astute_xero.xero.pacing import Pacer
from astute_xero.xero.client import XeroClient
from astute_xero.xero.tokens import TokenStore, XeroConnectionSettings, obtain_with_sdk
from devtools.astute_data import AstuteData
from devtools.xero_setup import SANDBOX_TIMEOUTS, XeroApp, authorise_app

TENANT = "33333333-3333-4333-8333-333333333333"


@dataclass
class Pipeline:
    db: psycopg.Connection
    data: AstuteData
    xero: object
    client: XeroClient
    entity: int

    run_id: int = 0
    app: XeroApp | None = None

    def select(self) -> int:
        """A new run, up to its work list."""
        scope = sync_state.RunScope(None, None, dt.date(2026, 12, 31))
        run_id = sync_state.start_run(self.db, kind="export", dag_id="test", airflow_run_id=f"r{dt.datetime.now()}", scope=scope)
        self.run_id = run_id
        sync_state.decide_entities(self.db, run_id, None)
        sync_state.select_documents(self.db, run_id, scope)
        return run_id

    def plan(self) -> list[ChunkKey]:
        """A run up to its chunks (every selected document taken as valid)."""
        run_id = self.select()
        self.db.execute("UPDATE xero_sync.run_document SET stage = 'ready' WHERE run_id = %s", (run_id,))
        contacts.resolve_contacts(self.db, self.client, run_id)
        return chunk_planning.plan_chunks(self.db, run_id, sync_state.exporting_tenants(self.db, run_id))

    def run(self) -> run_summary.RunSummary:
        """A whole run as the DAG orders it: invoice chunks, then credit-note chunks, then allocations."""
        for key in self.plan():  # planned in that order
            export_chunk(self.db, self.client, key)
        allocation.allocate_run(self.db, self.client, self.run_id)
        return run_summary.finish_run(self.db, self.run_id)

    def day_returns(self) -> None:
        """Xero's day has passed for every organisation: what the pacer counted of it, and any day-limit block."""
        self.db.execute("UPDATE xero_sync.rate_budget SET day_blocked_until = NULL, day_started_at = NULL, day_calls = 0")

    def status(self) -> dict[int, str]:
        return dict(self.db.execute("SELECT invoice_id, status FROM xero_sync.invoice_export"))

    def credit_note_status(self) -> dict[int, tuple]:
        return {row[0]: tuple(row[1:]) for row in self.db.execute(
            "SELECT credit_note_id, status, allocation_status, allocated_amount FROM xero_sync.credit_note_export")}

    def puts(self) -> int:
        return sum(1 for r in self.xero.backend.requests if r.method == "PUT" and r.path.endswith("/Invoices"))


def sandbox_client(xero, app: XeroApp, database_url: str, *, client_options: dict | None = None,
                   **pacer_options) -> XeroClient:
    """A XeroClient as the hook builds one, reaching the sandbox over HTTP, its state in this test's database
    (`client_options`: XeroClient's, e.g. its timeouts, instead of the sandbox's defaults)."""
    settings = XeroConnectionSettings("xero_default", app.client_id, app.client_secret, app.refresh_token,
                                      api_url=xero.url, identity_url=xero.url)

    def connect() -> psycopg.Connection:
        return psycopg.connect(database_url, autocommit=True)

    return XeroClient(settings, TokenStore(connect, settings, obtain_with_sdk), Pacer(connect, **pacer_options),
                      **{**SANDBOX_TIMEOUTS, **(client_options or {})})


@pytest.fixture
def pipeline(db: psycopg.Connection, xero, database_url: str) -> Iterator[Pipeline]:
    apply_migrations(db)
    xero.backend.add_tenant("Org", tenant_id=TENANT)
    app = authorise_app(xero.backend, [TENANT])
    client = sandbox_client(xero, app, database_url)
    data = AstuteData(db)
    data.regions()
    entity = data.entity("Entity", tenant_id=TENANT, go_live=dt.date(2026, 1, 1))
    yield Pipeline(db, data, xero, client, entity, app=app)
    client.close()
