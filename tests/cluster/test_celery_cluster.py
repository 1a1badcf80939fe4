"""A real CeleryExecutor cluster on this machine loses a worker mid-chunk and still sends everything exactly once.

`make test-cluster` (CI runs it after `make test`): PostgreSQL (metadata and Astute) and Redis on loopback,
`airflow db migrate`, then the api-server, scheduler, dag-processor, triggerer and two `airflow celery worker`
processes. The export runs over two organisations of 1,500 invoices each against the Xero sandbox with its
limits on and a realistic latency, with more task slots than Xero allows calls at once (so the pacer, not the
slots, holds each organisation to 5); one worker is SIGKILLed while it holds chunks at Xero. Airflow notices
(the task instances' heartbeats stop), retries them on the other worker, and the retries reconcile with Xero
before sending.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import shutil
import time
from decimal import Decimal

import psycopg
import pytest

from devtools import astute_db
from devtools.astute_db import REPO_ROOT
from devtools.airflow_deployment import AirflowDeployment, DeploymentError
from devtools.astute_data import AstuteData, Line
from devtools.loopback_services import postgres_server_url, redis_broker
from devtools.xero_setup import airflow_connection_json, authorise_app
from xero_sandbox import XeroSandbox

pytestmark = pytest.mark.cluster

DAG_ID = "xero_invoice_export"
CHUNK_TASKS = {"export_invoice_chunks", "export_credit_note_chunks"}  # each a lane of chunks
LANE_CHUNKS = 5  # lanes of 5 chunks here (50 in production): 6 lanes for 30 chunks, so both workers get some
ORGANISATIONS = 2
INVOICES_PER_ORGANISATION = 1500  # 15 chunks each
GO_LIVE = dt.date(2026, 1, 1)
# What Xero takes to answer, roughly: a chunk of 100 invoices some seconds, a read well under one.
LATENCY_S = {"/api.xro/2.0/Invoices": 4.0, "/api.xro/2.0/": 0.3}
WORKER_SLOTS = 8  # per worker: 16 task slots for 6 lanes (of 2 threads each) of 2 organisations
TIMEOUT_S = 900
ARTIFACTS = REPO_ROOT / ".artifacts"


@pytest.fixture(scope="module")
def cluster():
    """Everything started, and stopped again whatever happens; yields what the test looks at."""
    server = postgres_server_url()
    database = f"astute_xero_cluster_{int(time.time())}"
    astute_url = astute_db.create_database(server, database)
    sandbox = XeroSandbox.start(host="127.0.0.1", port=0)
    try:
        backend = sandbox.backend
        for prefix, seconds in LATENCY_S.items():
            backend.faults.latency(seconds, path_prefix=prefix)
        tenants = [backend.add_tenant(f"Cluster Org {n}") for n in range(1, ORGANISATIONS + 1)]
        numbers = load_invoices(astute_url, tenants)
        app = authorise_app(backend, tenants)
        env = {
            "AIRFLOW_CONN_ASTUTE_DB": astute_db.airflow_connection_json(astute_url),
            "AIRFLOW_CONN_XERO_DEFAULT": airflow_connection_json(app, sandbox.url),
            # A worker that dies is noticed when its task instances stop heartbeating: 30 s, not 5 minutes.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__ASTUTE_XERO__LANE_CHUNKS": str(LANE_CHUNKS),
        }
        with redis_broker() as broker:
            with AirflowDeployment(parallelism=2 * WORKER_SLOTS + 4, pools={"xero_api": 10 * ORGANISATIONS},
                                   env=env, server_url=server, celery_workers=2, broker_url=broker,
                                   worker_concurrency=WORKER_SLOTS, users={"admin": "admin"}) as airflow:
                yield {"airflow": airflow, "sandbox": sandbox, "tenants": tenants, "numbers": numbers,
                       "astute_url": astute_url, "broker": broker, "server": server}
    finally:
        sandbox.stop()
        astute_db.drop_database(server, database)


def load_invoices(url: str, tenants: list[str]) -> dict[str, set[str]]:
    """Sent invoices per organisation, 20 customers each; returns the invoice numbers per tenant."""
    numbers: dict[str, set[str]] = {}
    lines = [Line(), Line(description="Overtime", quantity=Decimal("4.5000"), unit_amount=Decimal("78.5625"))]
    with psycopg.connect(url, autocommit=True) as conn:
        astute_db.load_astute_schema(conn)
        data = AstuteData(conn)
        data.regions()
        for o, tenant in enumerate(tenants, start=1):
            entity = data.entity(f"Cluster Entity {o}", tenant_id=tenant, go_live=GO_LIVE)
            customers = [data.customer(f"Cluster {o} Customer {c:02d}") for c in range(20)]
            numbers[tenant] = set()
            for n in range(INVOICES_PER_ORGANISATION):
                number = f"C{o}-{n:05d}"
                data.invoice(entity, customers[n % 20], number=number,
                             invoice_date=dt.date(2026, 6, 1) + dt.timedelta(days=n % 60), lines=lines)
                numbers[tenant].add(number)
            data.flush()
    return numbers


def chunk_tries(airflow: AirflowDeployment, run_id: str) -> list[dict]:
    """Every try of every chunk task of the run: the current ones and those in task_instance_history."""
    current = [{"task_id": ti.task_id, "map_index": ti.map_index, "try_number": ti.try_number, "state": ti.state,
                "hostname": ti.hostname} for ti in airflow.task_instances(DAG_ID, run_id)
               if ti.task_id in CHUNK_TASKS and ti.map_index >= 0]
    with psycopg.connect(airflow.metadata_url, autocommit=True) as conn:
        earlier = [dict(zip(("task_id", "map_index", "try_number", "state", "hostname"), row)) for row in conn.execute(
            "SELECT task_id, map_index, try_number, state, hostname FROM task_instance_history "
            "WHERE dag_id = %s AND run_id = %s AND map_index >= 0", (DAG_ID, run_id))]
    return current + [t for t in earlier if t["task_id"] in CHUNK_TASKS]


def worker_of(hostname: str | None) -> str | None:
    return hostname.rsplit(":", 1)[-1] if hostname and ":" in hostname else None


def test_a_worker_killed_mid_chunk_costs_nothing(cluster):
    airflow, sandbox, tenants = cluster["airflow"], cluster["sandbox"], cluster["tenants"]
    backend = sandbox.backend
    airflow.wait_for_dag(DAG_ID)
    backend.rate_limiter.reset()
    airflow.unpause(DAG_ID)  # its scheduled run starts: the data interval ends today, after every invoice

    # Wait for worker-1 to hold lanes while their PUTs are at Xero, then kill it.
    deadline = time.monotonic() + TIMEOUT_S
    victim, held = "worker-1", []
    while time.monotonic() < deadline:
        runs = airflow.dag_runs(DAG_ID)
        run_id = runs[0].run_id if runs else None
        held = [ti for ti in airflow.task_instances(DAG_ID, run_id) if ti.task_id in CHUNK_TASKS
                and ti.state == "running" and worker_of(ti.hostname) == victim] if run_id else []
        chunks_flowing = any(r.method == "PUT" and r.path.endswith("/Invoices") for r in backend.requests)
        if len(held) >= 2 and chunks_flowing:  # a PUT takes 4 s at Xero: the held lanes are mostly in theirs
            break
        airflow.check_alive()
        time.sleep(0.5)
    else:
        raise DeploymentError("worker-1 never held two lanes at Xero")
    killed_at, killed_at_clock = time.monotonic(), backend.clock()
    airflow.kill(victim)
    print(f"\nSIGKILLed {victim} while it ran {len(held)} lane(s): "
          f"{', '.join(ti.label or str(ti.map_index) for ti in held)}")

    run = airflow.wait_for_run(DAG_ID, run_id, timeout_s=max(60.0, deadline - time.monotonic()))
    airflow.wait_until_idle(DAG_ID, timeout_s=300)  # a run it triggered, if any, finishes too
    recovered_s = time.monotonic() - killed_at

    tries = chunk_tries(airflow, run_id)
    workers = collections.Counter(worker_of(t["hostname"]) for t in tries if t["hostname"])
    retried = sorted({(t["task_id"], t["map_index"]) for t in tries if t["try_number"] > 1})
    in_xero = {tenant: collections.Counter(inv["InvoiceNumber"] for inv in backend.invoices(tenant)) for tenant in tenants}
    duplicates = sum(count - 1 for counter in in_xero.values() for count in counter.values() if count > 1)
    lost = sum(len(cluster["numbers"][tenant] - set(in_xero[tenant])) for tenant in tenants)
    peaks = {tenant: backend.peak_concurrency(tenant) for tenant in tenants}
    # PUTs Xero was working on when the worker died (their answers never reached it: the retries reconciled).
    puts_at_kill = [r for r in backend.requests if r.method == "PUT" and r.started <= killed_at_clock <= r.ended]
    with psycopg.connect(cluster["astute_url"], autocommit=True) as conn:
        recorded = dict(conn.execute(
            "SELECT i.invoice_number, e.xero_invoice_id::text FROM xero_sync.invoice_export e "
            "JOIN astute.invoice i ON i.id = e.invoice_id WHERE e.status = 'exported'").fetchall())
        statuses = collections.Counter(s for (s,) in conn.execute("SELECT status FROM xero_sync.invoice_export"))
    xero_ids = {inv["InvoiceNumber"]: inv["InvoiceID"] for tenant in tenants for inv in backend.invoices(tenant)}
    disagreeing = sorted(n for n in xero_ids if recorded.get(n) != xero_ids[n])

    print(json.dumps({
        "run": run.state, "workers_used": dict(workers), "chunk_tasks": len({(t["task_id"], t["map_index"]) for t in tries}),
        "tasks_retried": len(retried), "puts_at_xero_when_killed": len(puts_at_kill),
        "duplicates": duplicates, "lost": lost,
        "peak_concurrency_per_organisation": {backend.tenants[t].name: p for t, p in peaks.items()},
        "xero_sync_statuses": dict(statuses), "xero_sync_disagreeing_with_xero": len(disagreeing),
        "seconds_from_kill_to_green": round(recovered_s, 1),
    }, indent=2))

    assert run.state == "success"
    assert set(workers) == {"worker-1", "worker-2"}, f"chunks ran on {dict(workers)}"
    assert retried, "the killed worker's chunk tasks were retried"
    assert duplicates == 0 and lost == 0
    assert all(peak <= 5 for peak in peaks.values()), peaks
    assert statuses == {"exported": ORGANISATIONS * INVOICES_PER_ORGANISATION}
    assert disagreeing == []


def test_the_airflow_ui_shows_the_export_as_its_users_see_it(cluster):
    """Headless Chromium logs in to the cluster's UI and opens what a data engineer and finance look at; each
    screenshot is kept in .artifacts/ and what it shows is asserted."""
    from playwright.sync_api import expect, sync_playwright

    airflow = cluster["airflow"]
    run = next(r for r in airflow.dag_runs(DAG_ID) if r.state == "success")
    lanes = [ti for ti in airflow.task_instances(DAG_ID, run.run_id) if ti.task_id == "export_invoice_chunks"]
    retried = max(lanes, key=lambda ti: ti.try_number)  # a lane the killed worker held, if the first test ran
    ARTIFACTS.mkdir(exist_ok=True)
    shots = []

    def keep(page, name: str) -> None:
        path = ARTIFACTS / f"cluster_{name}.png"
        page.screenshot(path=str(path))
        assert path.stat().st_size > 30_000, f"{name}: a real page, not a blank"
        shots.append(str(path))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium") or "chromium", headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        context = browser.new_context(base_url=f"http://127.0.0.1:{airflow.api_port}",
                                      viewport={"width": 1440, "height": 1000})
        context.set_default_timeout(30_000)
        page = context.new_page()
        page.goto("/")
        page.wait_for_url("**/auth/login**")  # nothing without a login
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(airflow.password("admin"))
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/auth/" not in url)

        # The export DAG and its docs (doc_md): what the pipeline does, in order.
        page.goto(f"/dags/{DAG_ID}")
        page.get_by_role("button", name="Dag Docs").click()
        docs = page.get_by_role("dialog")
        expect(docs).to_contain_text("Export Sent invoices and credit notes from Astute to Xero")
        expect(docs).to_contain_text("continue_backlog")
        keep(page, "dag_docs")
        page.keyboard.press("Escape")

        # The trigger form: the Params with their titles.
        page.get_by_role("button", name="Trigger Dag").click()
        form = page.get_by_role("dialog")
        for title in ("Billing entities", "Dated from", "Dated up to"):
            expect(form).to_contain_text(title)
        keep(page, "trigger_form")
        page.keyboard.press("Escape")

        # The finished run's mapped export tasks, each named by its organisation and chunks.
        page.goto(f"/dags/{DAG_ID}/runs/{run.run_id}/tasks/export_invoice_chunks/mapped")
        table = page.get_by_role("table")
        expect(table).to_contain_text("Cluster Entity 1 · invoices · chunks 1-5 of 15")
        expect(table).to_contain_text("Cluster Entity 2 · invoices · chunks 11-15 of 15")
        keep(page, "mapped_chunks")

        # One lane's log: the retried lane, on its last try, with each of its chunks' outcome.
        page.goto(f"/dags/{DAG_ID}/runs/{run.run_id}/tasks/export_invoice_chunks/mapped/{retried.map_index}")
        label = retried.label
        assert label and label.startswith("Cluster Entity "), retried
        organisation, _, span = label.split(" · ")
        first_chunk = int(span.split()[1].split("-")[0])
        expect(page.locator("body")).to_contain_text(f"export_invoice_chunks [{label}]")
        expect(page.locator("body")).to_contain_text(f"{organisation} · invoices · chunk {first_chunk}/15: ChunkResult(")
        keep(page, "chunk_log")

        # The Xero Integration page, from the nav: nothing left to export.
        page.goto("/")
        page.get_by_role("link", name="Xero Integration").click()
        frame = page.frame_locator("iframe[title='Xero Integration']")
        expect(frame.locator("h1")).to_contain_text("Xero Integration - Cluster Entity 1")
        expect(frame.locator("[data-count='Invoices still to export']")).to_have_text("0")
        keep(page, "xero_integration")
        browser.close()
    print("\nUI screenshots: " + ", ".join(shots))
