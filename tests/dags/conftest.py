"""An export world: Astute data in PostgreSQL, organisations in the Xero sandbox, the DAG run for real."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from devtools.astute_data import AstuteData
from devtools.xero_setup import XeroApp, authorise_app
from tests.conftest import REPO_ROOT, connect_airflow
from xero_sandbox import XeroSandbox

AU_TENANT = "11111111-1111-4111-8111-111111111111"
NZ_TENANT = "22222222-2222-4222-8222-222222222222"
GO_LIVE = dt.date(2026, 1, 1)


@dataclass
class ExportWorld:
    db: psycopg.Connection
    data: AstuteData
    xero: XeroSandbox
    app: XeroApp
    run: Callable[..., Any]
    trigger: Callable[..., Any]

    def export_status(self) -> dict[int, str]:
        return dict(self.db.execute("SELECT invoice_id, status FROM xero_sync.invoice_export"))

    def xero_invoices(self, tenant_id: str = AU_TENANT) -> list[dict]:
        return self.xero.backend.invoices(tenant_id)

    def api_log(self, endpoint: str = "Invoices", method: str = "PUT") -> list[tuple]:
        return self.db.execute(
            "SELECT run_id, tenant_id, chunk_no, item_count, http_status FROM xero_sync.api_log "
            "WHERE endpoint = %s AND method = %s ORDER BY id",
            (endpoint, method),
        ).fetchall()


@pytest.fixture(scope="session")
def dags(airflow_home: str) -> dict:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"), known_pools={"xero_api"})
    assert not bag.import_errors, bag.import_errors
    return bag.dags


@pytest.fixture(scope="session")
def export_dag(dags: dict):
    return dags["xero_invoice_export"]


@pytest.fixture
def world(db: psycopg.Connection, xero: XeroSandbox, database_url: str, dags: dict, monkeypatch: pytest.MonkeyPatch) -> ExportWorld:
    xero.backend.add_tenant("Astute Demo AU", tenant_id=AU_TENANT, base_currency="AUD", currencies=["AUD", "USD"])
    xero.backend.add_tenant("Astute Demo NZ", tenant_id=NZ_TENANT, base_currency="NZD", currencies=["NZD"])
    app = authorise_app(xero.backend, [AU_TENANT, NZ_TENANT])
    connect_airflow(monkeypatch, database_url, app, xero.url)
    data = AstuteData(db)
    data.regions()

    def trigger(dag_id: str, **conf: Any):
        """Run a DAG once with this trigger form (conf), as `airflow dags test` would."""
        from airflow.utils.state import DagRunState

        dag = dags[dag_id]
        # In one process, a run's conf is written into the Param objects its DAG and tasks share
        # (a worker process never runs twice, so production never sees it): restore them after.
        defaults = copy.deepcopy(dag.params), {t.task_id: copy.deepcopy(t.params) for t in dag.tasks}
        try:
            dag_run = dag.test(run_conf=conf or None)
        finally:
            dag.params = defaults[0]
            for task in dag.tasks:
                task.params = defaults[1][task.task_id]
        return dag_run.state == DagRunState.SUCCESS, dag_run

    def run(**conf: Any):
        return trigger("xero_invoice_export", **conf)

    return ExportWorld(db, data, xero, app, run, trigger)
