"""Exactly once under faults: the real DAG against the sandbox with its fault switches on.

503s, answers lost after Xero committed, latency, access tokens expiring mid-run, a lost refresh
answer, 429s, and a worker killed mid-chunk; Airflow retries, runs repeat until done. Then: every
eligible invoice and credit note in Xero exactly once, every credit note allocated once, xero_sync
agreeing with Xero, no invalid_grant, no secret in any log or table.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from devtools.astute_data import Line
from astute_xero.xero.scopes import GRANULAR_SCOPES
from tests.conftest import REPO_ROOT
from tests.dags.conftest import AU_TENANT, GO_LIVE, NZ_TENANT

pytestmark = pytest.mark.e2e

TRICKY_NAMES = ['O\'Brien & Sons "Scaffolding"', "株式会社 Tōkyō Labour", "Zoë's Café \\ Bar", "Ōtautahi Builders"]


@pytest.fixture
def fast_retries(export_dag):
    """Retries as in production, but seconds apart instead of 30 s and more; restored afterwards."""
    saved = {t.task_id: (t.retries, t.retry_delay, t.retry_exponential_backoff) for t in export_dag.tasks}
    for task in export_dag.tasks:
        task.retries, task.retry_delay, task.retry_exponential_backoff = 6, dt.timedelta(seconds=0.2), 0
    yield
    for task in export_dag.tasks:
        task.retries, task.retry_delay, task.retry_exponential_backoff = saved[task.task_id]


CREDIT_NOTES = 30  # a chunk, a third without a number, two in three crediting an invoice


def load_world(world) -> list[int]:
    au = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    nz = world.data.entity("Astute NZ", region="NZ", tenant_id=NZ_TENANT, go_live=GO_LIVE)
    customers = [world.data.customer(name) for name in TRICKY_NAMES + ["Harbour Constructions"]]
    ids = []
    for n in range(420):  # AU: 5 chunks, a third of them without an Astute number
        ids.append(world.data.invoice(
            au, customers[n % len(customers)], number=None if n % 3 == 0 else f"AU-{n}",
            invoice_date=dt.date(2026, 6, 1) + dt.timedelta(days=n % 60),
            lines=[Line(description=f"Week {n} — ünïcode “quotes” & more", unit_amount=Decimal("41.1234") + n % 9)],
        ))
    for n in range(150):  # NZ: 2 chunks
        ids.append(world.data.invoice(nz, customers[n % 2], number=f"NZ-{n}", invoice_date=dt.date(2026, 7, 1)))
    for n in range(CREDIT_NOTES):
        world.data.credit_note(au, customers[n % len(customers)], invoice_id=ids[n] if n % 3 else None,
                               number=None if n % 3 == 1 else f"AU-CN-{n}", credit_date=dt.date(2026, 8, 1),
                               lines=[Line(description=f"Credit {n} “ü”", quantity=Decimal("1"),
                                           unit_amount=Decimal("5.5") + n)])
    world.data.flush()
    return ids


def check_credit_notes_once_and_allocated_once(world) -> None:
    exported = dict(world.db.execute(
        "SELECT credit_note_id, xero_credit_note_id::text FROM xero_sync.credit_note_export WHERE status = 'exported'"))
    in_xero = world.xero.backend.credit_notes(AU_TENANT)
    assert len(exported) == CREDIT_NOTES and set(exported.values()) == {x["CreditNoteID"] for x in in_xero}
    assert len(in_xero) == CREDIT_NOTES, "no credit note twice"
    allocations = Counter(len(x["Allocations"]) for x in in_xero)
    assert allocations == {1: CREDIT_NOTES * 2 // 3, 0: CREDIT_NOTES // 3}, "each allocated once, or never"
    statuses = Counter(row[0] for row in world.db.execute("SELECT allocation_status FROM xero_sync.credit_note_export"))
    assert statuses == {"allocated": CREDIT_NOTES * 2 // 3, None: CREDIT_NOTES // 3}


def check_exactly_once(world, ids: list[int]) -> dict[str, int]:
    exported = dict(world.db.execute(
        "SELECT invoice_id, xero_invoice_id::text FROM xero_sync.invoice_export WHERE status = 'exported'"))
    in_xero = world.xero_invoices(AU_TENANT) + world.xero_invoices(NZ_TENANT)
    xero_ids = Counter(x["InvoiceID"] for x in in_xero)
    lost = [i for i in ids if i not in exported]
    duplicates = len(in_xero) - len(set(exported.values()))
    assert lost == [], f"invoices never recorded as exported: {lost[:10]}"
    assert duplicates == 0, "Xero holds invoices no Astute invoice is linked to"
    assert set(exported.values()) == set(xero_ids), "xero_sync and Xero disagree"
    numbers = Counter(x["InvoiceNumber"] for x in in_xero)
    assert max(numbers.values()) == 1
    return {"lost": len(lost), "duplicates": duplicates}


def test_exactly_once_under_faults_with_figures(world, fast_retries, capfd, caplog):
    ids = load_world(world)
    backend = world.xero.backend
    faults = backend.faults
    faults.fail_next(3, status=503)  # PUT /Invoices answered 503, nothing done
    faults.drop_after_commit_next(3)  # PUT /Invoices done, answer lost
    faults.rate_limit_next(4, problem="minute", retry_after=1)  # any accounting call refused once
    faults.fail_next(2, status=503, path_prefix="/api.xro/2.0/Contacts", method="GET")
    faults.fail_next(1, status=503, path_prefix="/api.xro/2.0/CreditNotes", method="PUT")  # a chunk or an allocation
    faults.drop_after_commit_next(2, path_prefix="/api.xro/2.0/CreditNotes", method="PUT")
    faults.drop_after_commit_next(1, path_prefix="/connect/token", method="POST")  # a lost refresh answer
    faults.latency(0.02)

    runs = []
    with tokens_expiring_every(faults, seconds=1.5):  # access tokens die under the running tasks
        for _ in range(4):  # a data engineer re-runs until the run is green
            ok, dag_run = world.run()
            runs.append(dag_run)
            if ok:
                break
    assert ok, "the export did not finish after 4 runs"
    figures = check_exactly_once(world, ids)
    check_credit_notes_once_and_allocated_once(world)

    token_answers = Counter(r.status for r in backend.requests if r.path.endswith("/connect/token"))
    assert token_answers.get(400, 0) == 0, f"invalid_grant or other token refusals: {token_answers}"
    retries = sum(max(ti.try_number - 1, 0) for run in runs for ti in run.get_task_instances())
    injected = faults.injected
    assert injected.get("drop_after_commit", 0) == 6 and injected.get("fail_next", 0) == 6
    assert injected.get("rate_limit_next", 0) == 4 and injected.get("expire_access_tokens", 0) >= 3
    assert_no_secret_anywhere(world, capfd, caplog)
    with capfd.disabled():
        print(
            f"\nfault suite: {len(ids)} invoices and {CREDIT_NOTES} credit notes, faults injected {sum(injected.values())} {dict(injected)}, "
            f"token refreshes {token_answers.get(200, 0)}, task retries {retries}, DAG runs {len(runs)}, "
            f"duplicates {figures['duplicates']}, lost {figures['lost']}"
        )


@contextlib.contextmanager
def in_background(step, every: float):
    """Call `step` every `every` seconds while the block runs, until it returns True."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            if step():
                return

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def tokens_expiring_every(faults, seconds: float):
    return in_background(lambda: faults.expire_access_tokens(), seconds)


def test_a_worker_killed_mid_chunk_loses_and_duplicates_nothing(world, fast_retries, airflow_home):
    ids = load_world(world)
    backend = world.xero.backend
    backend.faults.hang_after_commit_next(60)  # Xero commits the first chunk, then the worker waits
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "airflow", "dags", "test", "xero_invoice_export"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not backend_has_committed(backend):
            assert time.monotonic() < deadline, "the worker never reached Xero"
            assert worker.poll() is None, "the worker ended before it was killed"
            time.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(30)
    # A lane has several chunks in flight: some are recorded, the hanging one (and any other at Xero) is not.
    committed = len(world.xero_invoices(AU_TENANT)) + len(world.xero_invoices(NZ_TENANT))
    recorded, in_flight = world.db.execute(
        "SELECT count(*) FILTER (WHERE status = 'exported'), count(*) FILTER (WHERE status = 'sending') "
        "FROM xero_sync.invoice_export").fetchone()
    unrecorded = committed - recorded
    assert in_flight >= unrecorded > 0, "killed after Xero committed a chunk, before its write-back"

    ok, _ = world.run()
    assert ok
    check_exactly_once(world, ids)
    reconciled = world.db.execute(
        "SELECT count(*) FROM xero_sync.api_log, jsonb_array_elements(outcome) o WHERE (o->>'reconciled')::boolean"
    ).fetchone()[0]
    assert reconciled == unrecorded, "the killed chunks' invoices were found in Xero, not sent again"


def backend_has_committed(backend) -> bool:
    """The hanging request is logged only when it ends; until then, the committed invoices show it."""
    return bool(backend.invoices(AU_TENANT) or backend.invoices(NZ_TENANT))


def assert_no_secret_anywhere(world, capfd, caplog) -> None:
    identity = world.xero.backend.identity
    secrets = [world.app.client_secret, *identity.refresh_grants, *identity.access_grants]
    assert len(secrets) > 3
    out, err = capfd.readouterr()
    logs = [out, err, caplog.text]  # what Airflow printed, and the tasks' own log records
    logs += [p.read_text(errors="replace") for p in Path(os.environ["AIRFLOW_HOME"]).rglob("*.log")]
    tables = ["api_log", "invoice_export", "validation_issue", "export_run", "run_entity", "export_chunk"]
    for table in tables:
        logs.append(str(world.db.execute(f"SELECT * FROM xero_sync.{table}").fetchall()))
    text = "\n".join(logs)
    assert len(text) > 10_000, "the logs were captured"
    leaked = [s[:6] + "…" for s in secrets if s in text]
    assert leaked == [], f"secrets found in logs or tables: {leaked}"


UK_TENANT = "44444444-4444-4444-8444-444444444444"
LONG = "Ж" * 300  # a 300-character invoice number, and a customer name as long


def test_real_xero_faults_end_with_every_invoice_once_and_xero_sync_agreeing(
    world, fast_retries, export_dag, database_url, monkeypatch, capfd
):
    """Issue 9's fault suite: Xero filling in tax types, a retry past the idempotency window, a commit
    landing after the client gave up, a supplier bill with an Astute invoice's number, one organisation
    of three disconnected mid-run, a 300-character number and customer name in a full chunk."""
    backend = world.xero.backend
    backend.add_tenant("Astute Demo UK", tenant_id=UK_TENANT, base_currency="GBP")
    app = reauthorise(world, [AU_TENANT, NZ_TENANT, UK_TENANT], database_url, monkeypatch)
    au = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    nz = world.data.entity("Astute NZ", region="NZ", tenant_id=NZ_TENANT, go_live=GO_LIVE)
    uk = world.data.entity("Astute UK", region="UK", tenant_id=UK_TENANT, go_live=GO_LIVE)
    customers = [world.data.customer(name) for name in TRICKY_NAMES]
    ids = {AU_TENANT: [], NZ_TENANT: [], UK_TENANT: []}
    for n in range(250):  # a third unnumbered, their lines without a tax type (Xero fills it in)
        ids[AU_TENANT].append(world.data.invoice(
            au, customers[n % len(customers)], number=None if n % 3 == 0 else f"AU-{n}",
            invoice_date=dt.date(2026, 6, 1) + dt.timedelta(days=n % 30),
            lines=[Line(unit_amount=Decimal("41.1234") + n % 7, tax_type=None if n % 3 == 0 else "OUTPUT")]))
    for n in range(120):
        ids[NZ_TENANT].append(world.data.invoice(nz, customers[n % 2], number=f"NZ-{n}", invoice_date=dt.date(2026, 7, 1)))
        ids[UK_TENANT].append(world.data.invoice(uk, customers[n % 3], number=f"UK-{n}", invoice_date=dt.date(2026, 7, 1)))
    too_long = [world.data.invoice(au, customers[0], number=LONG, invoice_date=dt.date(2026, 6, 1)),
                world.data.invoice(au, world.data.customer(LONG), number="AU-LONG-NAME", invoice_date=dt.date(2026, 6, 1))]
    world.data.flush()
    supplier = backend.add_contact(AU_TENANT, "Scaffold Supplies")
    bill = backend.seed_bill(AU_TENANT, supplier, "AU-7")  # a supplier's bill numbered like an Astute invoice

    # Run 1 (AU and NZ): answers lost after Xero committed, one commit landing after our client gave up,
    # and no task retries: the run ends with invoices in flight.
    saved = {task.task_id: task.retries for task in export_dag.tasks}
    for task in export_dag.tasks:
        task.retries = 0
    backend.faults.drop_after_commit_next(2)
    backend.faults.commit_late_next(10.5)  # after the connection's read timeout (10 s), within its margin (1 s)
    first_ok, _ = world.run(billing_entity_ids=[au, nz])
    for task in export_dag.tasks:
        task.retries = saved[task.task_id]
    in_flight = world.db.execute("SELECT count(*) FROM xero_sync.invoice_export WHERE status = 'sending'").fetchone()[0]
    assert not first_ok and in_flight > 0, "run 1 left invoices whose outcome it does not know"

    # Run 2, an hour later (Xero has forgotten the Idempotency-Keys): the UK organisation disconnects
    # the app as soon as the run first calls it.
    backend.advance(3600)
    with disconnected_on_first_call(backend, app.client_id, UK_TENANT):
        second_ok, _ = world.run()
    assert second_ok, "one organisation's 403 does not fail the run"
    (decision, detail) = world.db.execute(
        "SELECT decision, detail FROM xero_sync.run_entity WHERE tenant_id = %s ORDER BY run_id DESC LIMIT 1",
        (UK_TENANT,)).fetchone()
    assert decision == "stopped" and "connect" in detail.lower(), detail
    assert world.xero_invoices(UK_TENANT) == []

    # The organisation is connected again (a new consent, a new refresh token in the connection).
    reauthorise(world, [AU_TENANT, NZ_TENANT, UK_TENANT], database_url, monkeypatch)
    third_ok, _ = world.run()
    assert third_ok

    duplicates = lost = 0
    for tenant, expected in ids.items():
        in_xero = {x["InvoiceID"]: x for x in world.xero_invoices(tenant) if x["Type"] == "ACCREC"}
        recorded = dict(world.db.execute(
            "SELECT invoice_id, xero_invoice_id::text FROM xero_sync.invoice_export "
            "WHERE tenant_id = %s AND status = 'exported'", (tenant,)))
        lost += len(set(expected) - set(recorded))
        duplicates += len(in_xero) - len(set(recorded.values()))
        assert set(recorded.values()) == set(in_xero), f"xero_sync and Xero disagree for {tenant}"
        for invoice_id, xero_id in recorded.items():
            assert in_xero[xero_id]["Status"] == "AUTHORISED"
            assert in_xero[xero_id]["Url"].endswith(f"/{invoice_id}"), "each Xero invoice is its Astute invoice"
    assert (duplicates, lost) == (0, 0)
    assert bill in {x["InvoiceID"] for x in world.xero_invoices(AU_TENANT) if x["Type"] == "ACCPAY"}
    assert bill not in {row[0] for row in world.db.execute("SELECT xero_invoice_id::text FROM xero_sync.invoice_export")}
    held = dict(world.db.execute(
        "SELECT document_id, string_agg(DISTINCT rule, ',') FROM xero_sync.validation_issue WHERE document_id = ANY(%s) "
        "GROUP BY document_id", (too_long,)))
    assert held == {too_long[0]: "number_too_long", too_long[1]: "customer_name_too_long"}
    injected = backend.faults.injected
    assert injected.get("drop_after_commit") == 2 and injected.get("commit_late") == 1
    with capfd.disabled():
        print(f"\nreal-Xero fault suite: {sum(len(v) for v in ids.values())} invoices in 3 organisations, "
              f"faults {dict(injected)}, runs 3, duplicates {duplicates}, lost {lost}")


def reauthorise(world, tenants: list[str], database_url: str, monkeypatch):
    """A person consents again to these organisations; the new refresh token goes in the connection."""
    from devtools.xero_setup import XeroApp
    from tests.conftest import connect_airflow

    app = XeroApp(world.app.client_id, world.app.client_secret,
                  world.xero.backend.authorise(world.app.client_id, tenants, scope=GRANULAR_SCOPES))
    connect_airflow(monkeypatch, database_url, app, world.xero.url)
    return app


def disconnected_on_first_call(backend, client_id: str, tenant_id: str):
    """Disconnect the app from one organisation right after the next call to it arrives."""
    seen = len(backend.requests)

    def watch() -> bool:
        if any(r.tenant_id == tenant_id for r in backend.requests[seen:]):
            backend.disconnect(client_id, tenant_id)
            return True
        return False

    return in_background(watch, 0.01)
