"""A real Airflow serving the report's pages: its API server (with the plugin in plugins/), scheduler and
dag-processor on a PostgreSQL metadata database, SimpleAuthManager asking for a login; the Astute database
holding the report's dataset, exported to the Xero sandbox by the scheduler's own run of the export DAG;
and headless Chromium (Debian's, driven by Playwright) logged in through Airflow's login page.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest

from devtools import astute_db
from devtools.airflow_deployment import AirflowDeployment
from devtools.astute_data import AstuteData
from devtools.xero_setup import airflow_connection_json, authorise_app
from tests.conftest import REPO_ROOT
from tests.report.dataset import AU_TENANT, NZ_TENANT, ReportDataset, load_report_dataset
from xero_sandbox import XeroSandbox

EXPORT_DAG = "xero_invoice_export"
USER, ROLE = "finance", "viewer"  # the least a person needs to read the report
ARTIFACTS = REPO_ROOT / ".artifacts"  # git-ignored


@dataclass
class ReportUI:
    airflow: AirflowDeployment
    db: psycopg.Connection  # the test's own connection to the Astute database
    dataset: ReportDataset
    data: AstuteData | None = None  # the dataset's writer, to add documents after the first export

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.airflow.api_port}"

    @property
    def password(self) -> str:
        return self.airflow.password(USER)

    def password_of(self, username: str) -> str:
        return self.airflow.password(username)


@contextmanager
def report_ui(database_url: str, sandbox: XeroSandbox, users: dict[str, str] | None = None) -> Iterator[ReportUI]:
    """The dataset loaded, Airflow up, and the export DAG's scheduled run (and any run it triggers) finished."""
    with psycopg.connect(database_url, autocommit=True) as db, pytest.MonkeyPatch.context() as env:
        # The API server must find astute_db where a deployment keeps it, in its metadata database.
        env.delenv("AIRFLOW_CONN_ASTUTE_DB", raising=False)
        astute_db.load_astute_schema(db)
        data = AstuteData(db)
        data.regions()
        sandbox.backend.reset()
        sandbox.backend.add_tenant("Astute Demo AU", tenant_id=AU_TENANT, base_currency="AUD", currencies=["AUD", "USD"])
        sandbox.backend.add_tenant("Astute Demo NZ", tenant_id=NZ_TENANT, base_currency="NZD", currencies=["NZD"])
        app = authorise_app(sandbox.backend, [AU_TENANT, NZ_TENANT])
        dataset = load_report_dataset(data, db, sandbox.backend)
        with AirflowDeployment(parallelism=4, pools={"xero_api": 5}, triggerer=False, remove_home=True,
                               users=users or {USER: ROLE},
                               env={"AIRFLOW_CONN_XERO_DEFAULT": airflow_connection_json(app, sandbox.url)}) as airflow:
            airflow.airflow("connections", "add", "astute_db", "--conn-json",
                            astute_db.airflow_connection_json(database_url))
            # Unpausing starts the daily run of the latest interval: it exports everything dated before today.
            airflow.unpause(EXPORT_DAG)
            assert airflow.wait_until_idle(EXPORT_DAG, timeout_s=150, settle_s=3), "the export did not finish"
            runs = airflow.dag_runs(EXPORT_DAG)
            assert runs and all(run.state == "success" for run in runs), runs
            yield ReportUI(airflow, db, dataset, data)


@pytest.fixture(scope="module")
def ui(database_url: str, sandbox: XeroSandbox) -> Iterator[ReportUI]:
    with report_ui(database_url, sandbox) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "make test installs Debian's chromium; run it through make test"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


def log_in(browser, ui: ReportUI, username: str):
    """A browser context logged in through Airflow's own login page, as `username`."""
    context = browser.new_context(base_url=ui.base_url, viewport={"width": 1440, "height": 1300})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto("/")
    page.wait_for_url("**/auth/login**")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(ui.password_of(username))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/" not in url)
    page.close()
    return context


@pytest.fixture(scope="module")
def logged_in(ui: ReportUI, browser):
    """A browser session logged in through Airflow's own login page, as the finance user."""
    context = log_in(browser, ui, USER)
    yield context
    context.close()
