"""xero_status_sync end to end: the export puts documents in the sandbox, a person works on them "in Xero",
and the status sync (the real DAG, dag.test()) reads back over HTTP what happened and what disagrees."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from decimal import Decimal as D

import pytest

from astute_xero.report import integration
from devtools.astute_data import Line
from devtools.xero_setup import airflow_connection_json
from tests.dags.conftest import AU_TENANT, GO_LIVE

pytestmark = pytest.mark.e2e

TODAY = dt.date.today()


def one_line(amount: str) -> list[Line]:
    return [Line(quantity=D("1"), unit_amount=D(amount))]  # 10 % GST on top (OUTPUT): total = amount x 1.1


def xero_id(world, kind: str, astute_id: int) -> str:
    table, column, xero_column = (("invoice_export", "invoice_id", "xero_invoice_id") if kind == "invoice"
                                  else ("credit_note_export", "credit_note_id", "xero_credit_note_id"))
    return str(world.db.execute(f"SELECT {xero_column} FROM xero_sync.{table} WHERE {column} = %s",
                                (astute_id,)).fetchone()[0])


def sync(world, **conf):
    ok, dag_run = world.trigger("xero_status_sync", **conf)
    assert ok, "the status sync run failed"
    return dag_run


def payment(world, invoice_id: int) -> dict:
    row = world.db.execute(
        "SELECT payment_state, xero_status, total, amount_due, amount_paid, amount_credited, fully_paid_on, "
        "last_payment_date FROM xero_sync.invoice_payment WHERE invoice_id = %s", (invoice_id,)).fetchone()
    keys = ("state", "status", "total", "due", "paid", "credited", "fully_paid_on", "last_payment_date")
    return dict(zip(keys, row)) if row else {}


def open_drift(world) -> list[tuple]:
    return world.db.execute(
        "SELECT kind, astute_id, drift FROM xero_sync.drift WHERE resolved_at IS NULL ORDER BY kind, astute_id, drift"
    ).fetchall()


def sync_calls(world) -> list[tuple]:
    """The status sync's calls in the API log (it belongs to no export run)."""
    return world.db.execute(
        "SELECT method, endpoint, item_count FROM xero_sync.api_log WHERE run_id IS NULL ORDER BY id").fetchall()


def test_payments_in_xero_are_read_back_full_part_and_on_a_credit_noted_invoice(world):
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = world.data.customer("Payments Pty Ltd")
    full = world.data.invoice(entity, customer, number="PAY-FULL", lines=one_line("100"))
    part = world.data.invoice(entity, customer, number="PAY-PART", lines=one_line("200"))
    credited = world.data.invoice(entity, customer, number="PAY-CN", lines=one_line("300"))
    overdue = world.data.invoice(entity, customer, number="PAY-LATE", lines=one_line("50"))
    future = world.data.invoice(entity, customer, number="PAY-LATER", invoice_date=TODAY - dt.timedelta(days=1),
                                due_date=TODAY + dt.timedelta(days=30), lines=one_line("60"))
    world.data.credit_note(entity, customer, invoice_id=credited, number="CN-PAY", lines=one_line("100"))
    world.data.flush()
    pay_run = 9001
    world.db.execute("INSERT INTO astute.pay_run VALUES (%s, %s, '2026-05-31', 'Finalised', NULL)", (pay_run, entity))
    world.db.execute("UPDATE astute.invoice SET pay_run_id = %s WHERE id IN (%s, %s)", (pay_run, full, part))
    assert world.run()[0]
    sync(world)  # the first read of an organisation is a full one

    backend = world.xero.backend
    backend.record_payment(AU_TENANT, xero_id(world, "invoice", full), "110.00", dt.date(2026, 7, 1))
    backend.record_payment(AU_TENANT, xero_id(world, "invoice", part), "50.00", dt.date(2026, 7, 2))
    backend.record_payment(AU_TENANT, xero_id(world, "invoice", credited), "220.00", dt.date(2026, 7, 3))
    calls_before = len(sync_calls(world))
    sync(world)

    assert payment(world, full) == {"state": "paid", "status": "PAID", "total": D("110.00"), "due": D("0.00"),
                                    "paid": D("110.00"), "credited": D("0.00"), "fully_paid_on": dt.date(2026, 7, 1),
                                    "last_payment_date": dt.date(2026, 7, 1)}
    assert payment(world, part) | {"state": None} == {"state": None, "status": "AUTHORISED", "total": D("220.00"),
                                                      "due": D("170.00"), "paid": D("50.00"), "credited": D("0.00"),
                                                      "fully_paid_on": None, "last_payment_date": dt.date(2026, 7, 2)}
    assert payment(world, part)["state"] == "overdue"  # due in June, part-paid, still owing
    # 330.00, of which 110.00 was credited by the credit note (allocated by the export) and 220.00 paid.
    assert payment(world, credited) == {"state": "paid", "status": "PAID", "total": D("330.00"), "due": D("0.00"),
                                        "paid": D("220.00"), "credited": D("110.00"),
                                        "fully_paid_on": dt.date(2026, 7, 3), "last_payment_date": dt.date(2026, 7, 3)}
    assert payment(world, overdue)["state"] == "overdue" and payment(world, future)["state"] == "awaiting payment"
    # Incremental: one page of invoices and one of credit notes (the organisation has ours), with what changed
    # since the newest change read before (If-Modified-Since is to the second: that second's documents, here
    # perhaps all five exported in it, come again).
    (invoices_call, credit_notes_call) = sync_calls(world)[calls_before:]
    assert invoices_call[:2] == ("GET", "Invoices") and 3 <= invoices_call[2] <= 5
    assert credit_notes_call[:2] == ("GET", "CreditNotes") and credit_notes_call[2] <= 1
    (state, invoices, paid, part_paid) = world.db.execute(
        "SELECT payment_state, invoices, paid, part_paid FROM xero_sync.pay_run_payment WHERE pay_run_id = %s",
        (pay_run,)).fetchone()
    assert (state, invoices, paid, part_paid) == ("overdue", 2, 1, 0)
    assert open_drift(world) == []

    # The Xero Integration report shows the payment picture, per entity and per pay run.
    page = integration.build_report(world.db, entity)
    assert {p.state: p.invoices for p in page.payments} == {"paid": 2, "overdue": 2, "awaiting payment": 1}
    assert [(r.pay_run_id, r.state, r.paid, r.overdue) for r in page.pay_runs] == [(pay_run, "overdue", 1, 1)]
    html = integration.render_html(page)
    assert '<div class="n" data-payment="paid">2</div>' in html and f'data-pay-run="{pay_run}"' in html
    assert "2 paid (0.00 due)" in integration.render_text(page)
    # And when every document was last compared with Astute: the first read, a full one.
    (full_at,) = world.db.execute("SELECT last_full_at FROM xero_sync.status_sync").fetchone()
    assert page.full_reconciliation_at == full_at and full_at <= page.read_back_at
    assert f"Last full reconciliation (every document compared): {full_at:%Y-%m-%d %H:%M} UTC" in (
        integration.render_text(page))
    assert "every document last compared with Astute at the full reconciliation of" in html


def test_a_void_a_deletion_an_edited_total_and_a_merged_contact_are_each_drift_once(world):
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = world.data.customer("Drift Pty Ltd")
    merged_away = world.data.customer("Merged Away Ltd")
    voided = world.data.invoice(entity, customer, number="DR-VOID", lines=one_line("10"))
    gone = world.data.invoice(entity, customer, number="DR-GONE", lines=one_line("20"))
    edited = world.data.invoice(entity, customer, number="DR-EDIT", lines=one_line("30"))
    moved = world.data.invoice(entity, merged_away, number="DR-MOVE", lines=one_line("40"))
    fine = world.data.invoice(entity, customer, number="DR-FINE", lines=one_line("50"))
    world.data.flush()
    assert world.run()[0]
    sync(world)
    assert open_drift(world) == []

    backend = world.xero.backend
    backend.void_document(AU_TENANT, "invoice", xero_id(world, "invoice", voided))
    backend.forget_document(AU_TENANT, "invoice", xero_id(world, "invoice", gone))  # no longer in Xero
    backend.edit_document_lines(AU_TENANT, "invoice", xero_id(world, "invoice", edited), [
        {"Description": "Edited in Xero", "Quantity": 1, "UnitAmount": 35, "AccountCode": "200", "TaxType": "OUTPUT"}])
    contacts = {c["Name"]: c["ContactID"] for c in backend.contacts(AU_TENANT)}
    backend.merge_contacts(AU_TENANT, contacts["Merged Away Ltd"], contacts["Drift Pty Ltd"])
    # In Xero with an Astute invoice's link, but unknown to Astute (say, an export whose write-back was lost).
    from astute_xero.hooks import XeroHook
    from astute_xero.export.chunk_export import invoice_url_template
    from astute_xero.export.documents import INVOICE
    from xero_python.accounting import Contact, Invoice, LineItem

    client = XeroHook().client()
    try:
        client.create_documents(INVOICE, AU_TENANT, [Invoice(
            type="ACCREC", contact=Contact(contact_id=contacts["Drift Pty Ltd"]), date=dt.date(2026, 6, 1),
            due_date=dt.date(2026, 6, 15), status="AUTHORISED", invoice_number="DR-STRAY",
            url=invoice_url_template().format(invoice_id=fine),
            line_items=[LineItem(description="Stray", quantity=1, unit_amount=5, account_code="200")])],
            idempotency_key="stray-1")
    finally:
        client.close()
    # Keyed in by hand in Xero: not ours, never recorded, never drift.
    backend.seed_invoice(AU_TENANT, contacts["Drift Pty Ltd"], "HAND-1", amount="7.00", date=dt.date(2026, 6, 1))

    sync(world)  # incremental: it sees what changed, not what is gone
    expected = [("invoice", voided, "voided_in_xero"), ("invoice", edited, "total_differs"),
                ("invoice", moved, "contact_changed"), ("invoice", None, "unknown_to_astute")]
    assert open_drift(world) == sorted(expected, key=lambda d: (d[0], d[1] is None, d[1] or 0, d[2]))
    sync(world, billing_entity_ids=[entity], full_reconciliation=True)  # only a full read finds what is gone
    expected.append(("invoice", gone, "missing_in_xero"))
    assert open_drift(world) == sorted(expected, key=lambda d: (d[0], d[1] is None, d[1] or 0, d[2]))
    sync(world)
    sync(world, full_reconciliation=True)
    (recorded,) = world.db.execute("SELECT count(*) FROM xero_sync.drift").fetchone()
    assert recorded == len(expected), "each drift is recorded once, however often it is found again"

    details = dict(world.db.execute("SELECT drift, detail || ' | ' || what_to_do FROM xero_sync.drift").fetchall())
    assert "Invoice DR-VOID is VOIDED in Xero" in details["voided_in_xero"]
    assert "add up to 35.00 in Xero (SubTotal, before tax) but to 30.00 in Astute" in details["total_differs"]
    assert "belongs to Contact Drift Pty Ltd" in details["contact_changed"]
    assert "xero_remove_contact_link" in details["contact_changed"]
    assert "Invoice DR-STRAY" in details["unknown_to_astute"]
    assert "HAND-1" not in {row[0] for row in world.db.execute("SELECT number FROM xero_sync.xero_document")}
    assert "Invoice DR-GONE" in details["missing_in_xero"] and "xero_reset_for_export" in details["missing_in_xero"]
    assert fine not in {astute_id for _, astute_id, _ in open_drift(world)}

    # The Xero Integration report lists each, with what to do.
    page = integration.build_report(world.db, entity)
    assert sorted(d.drift for d in page.drift) == sorted(d for _, _, d in expected)
    html = integration.render_html(page)
    assert html.count('data-drift="') == len(expected) and "Voided in Xero" in html
    assert f"Astute and Xero disagree: {len(expected)}" in integration.render_text(page)

    # An invoice gone from Xero can be reset for export (an exported one otherwise cannot): it goes again, once.
    assert world.trigger("xero_reset_for_export", invoice_ids=[gone])[0]
    assert not world.trigger("xero_reset_for_export", invoice_ids=[fine])[0], "still in Xero: refused"
    assert world.run()[0]
    numbers = [inv["InvoiceNumber"] for inv in backend.invoices(AU_TENANT)]
    assert numbers.count("DR-GONE") == 1 and world.export_status()[gone] == "exported"
    assert ("invoice", gone, "missing_in_xero") not in open_drift(world)

    # Put right in Xero, a drift resolves with the next read that sees it.
    backend.edit_document_lines(AU_TENANT, "invoice", xero_id(world, "invoice", edited), [
        {"Description": "Put back", "Quantity": 1, "UnitAmount": 30, "AccountCode": "200", "TaxType": "OUTPUT"}])
    sync(world)
    assert ("invoice", edited, "total_differs") not in open_drift(world)


def test_a_second_sync_with_nothing_changed_makes_one_call_and_changes_nothing(world, caplog):
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = world.data.customer("Quiet Pty Ltd")
    for n in range(20):
        world.data.invoice(entity, customer, number=f"Q-{n:03d}", lines=one_line("10"))
    world.data.flush()
    assert world.run()[0]
    world.xero.backend.advance(120)  # the last ten are exported later than the read's one-minute overlap
    for n in range(20, 30):
        world.data.invoice(entity, customer, number=f"Q-{n:03d}", lines=one_line("10"))
    world.data.flush()
    assert world.run()[0]
    sync(world)
    snapshot = world.db.execute("SELECT * FROM xero_sync.xero_document ORDER BY xero_id").fetchall()
    calls_before = len(sync_calls(world))

    sync(world)

    (call,) = sync_calls(world)[calls_before:]
    # Not a full read: at most the documents of the minute before the newest change again (each read overlaps
    # the last by a minute, issue 20), which change nothing.
    assert call[:2] == ("GET", "Invoices") and call[2] <= 10
    assert world.db.execute("SELECT * FROM xero_sync.xero_document ORDER BY xero_id").fetchall() == snapshot
    assert open_drift(world) == []

    # A week after its last full reconciliation, the scheduled sync reads the organisation in full by itself
    # ([astute_xero] full_reconciliation_days, 7 unless set), and says why.
    world.db.execute("UPDATE xero_sync.status_sync SET last_full_at = last_full_at - interval '7 days'")
    calls_before = len(sync_calls(world))
    caplog.clear()
    sync(world)
    assert sync_calls(world)[calls_before:] == [("GET", "Invoices", 30), ("GET", "CreditNotes", 0)], "all of it read"
    assert "read, 2 call(s), 30 read" in caplog.text and "full (due: the last was on " in caplog.text
    assert "every 7 day(s))" in caplog.text, "the summary says why the read was full"


def test_the_full_reconciliation_schedule_is_a_setting_checked_by_name(monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from astute_xero.readback.tasks import full_reconciliation_days

    monkeypatch.delenv("AIRFLOW__ASTUTE_XERO__FULL_RECONCILIATION_DAYS", raising=False)
    assert full_reconciliation_days() == 7
    for value, days in [("0", None), ("14", 14), (" 1 ", 1)]:
        monkeypatch.setenv("AIRFLOW__ASTUTE_XERO__FULL_RECONCILIATION_DAYS", value)
        assert full_reconciliation_days() == days
    for bad in ("-1", "weekly", "7.5"):
        monkeypatch.setenv("AIRFLOW__ASTUTE_XERO__FULL_RECONCILIATION_DAYS", bad)
        with pytest.raises(AirflowFailException, match=r"\[astute_xero\] full_reconciliation_days .*" + bad):
            full_reconciliation_days()


def test_the_syncs_calls_never_push_an_organisation_past_its_budget_while_an_export_runs(world, monkeypatch):
    """Xero's minute scaled down to 8 calls in 6 s: the export's chunks and the sync's pages share it."""
    from astute_xero.hooks import XeroHook, astute_connection
    from astute_xero.readback import status_sync

    backend = world.xero.backend
    backend.limits.per_minute, backend.limits.minute_s = 8, 6.0
    monkeypatch.setenv("AIRFLOW_CONN_XERO_DEFAULT", airflow_connection_json(
        world.app, world.xero.url, limits={"per_minute": 8, "minute_s": 6}))
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customers = [world.data.customer(f"Budget Customer {c}") for c in range(3)]
    first = [world.data.invoice(entity, customers[n % 3], number=f"B1-{n:04d}", lines=one_line("10"))
             for n in range(1200)]
    world.data.flush()
    assert world.run()[0]  # 12 chunks in Xero, created by this app: the sync reads them back in full below
    for n in range(400):
        world.data.invoice(entity, customers[n % 3], number=f"B2-{n:04d}", lines=one_line("10"))
    world.data.flush()
    backend.rate_limiter.reset()
    started = backend.clock()

    outcome: dict = {}

    def read_back_in_full() -> None:
        client = XeroHook().client()
        try:
            with astute_connection() as conn:
                outcome["sync"] = status_sync.sync_organisation(conn, client, AU_TENANT, full=True)
        finally:
            client.close()

    reader = threading.Thread(target=read_back_in_full)
    reader.start()
    exported, _ = world.run()  # 4 more chunks, at the same time
    reader.join(timeout=300)

    assert exported and outcome["sync"].documents_read >= len(first)
    assert backend.rate_limit_refusals(AU_TENANT) == [], "no 429: the two never took more than the minute allows"
    calls = [r for r in backend.requests if r.started >= started and r.path.startswith("/api.xro/")]
    pages = [r for r in calls if r.method == "GET" and r.path.endswith("/Invoices") and "page" in r.query]
    chunks = [r for r in calls if r.method == "PUT" and r.path.endswith("/Invoices")]
    assert len(pages) >= 2 and len(chunks) == 4
    assert min(r.started for r in pages) < max(r.started for r in chunks), "they ran side by side"
    # Every call of both was admitted within the minute's 8 (the sandbox counts): none was refused, none lost.
    assert backend.call_stats(AU_TENANT).admitted == len(calls)


def move_to_a_custom_connection(world, monkeypatch, client_id: str = "custom-au") -> None:
    """The organisation moves to another Xero app (a new client id: here a Custom Connection, as for the 2026
    pricing or granular scopes) and the old app is disconnected from it."""
    world.xero.backend.identity.register_app(client_id, client_id + "-secret", custom_tenant_id=AU_TENANT,
                                             created=dt.date(2026, 6, 1))
    connection = json.loads(os.environ["AIRFLOW_CONN_XERO_DEFAULT"])
    extra = {key: value for key, value in connection["extra"].items() if key != "refresh_token"}
    monkeypatch.setenv("AIRFLOW_CONN_XERO_DEFAULT", json.dumps({
        "conn_type": "xero", "login": client_id, "password": client_id + "-secret",
        "extra": {**extra, "grant_type": "client_credentials"}}))
    world.xero.backend.disconnect(world.app.client_id, AU_TENANT)


def test_after_a_change_of_xero_app_nothing_is_flagged_missing_and_nothing_is_sent_twice(world, export_dag,
                                                                                         monkeypatch):
    """Issue 19, finding 3: our documents are known by their identity in Xero (Xero id, Url, number), not by
    which app created them (createdByMyApp answers per client id)."""
    backend = world.xero.backend
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = world.data.customer("New App Pty Ltd")
    numbered = world.data.invoice(entity, customer, number="APP-1", lines=one_line("100"))
    unnumbered = world.data.invoice(entity, customer, number=None, lines=one_line("200"))
    world.data.credit_note(entity, customer, invoice_id=numbered, number="APP-CN", lines=one_line("10"))
    world.data.flush()
    assert world.run()[0]  # the old app
    sync(world)
    contact = next(c["ContactID"] for c in backend.contacts(AU_TENANT) if c["Name"] == "New App Pty Ltd")
    backend.seed_invoice(AU_TENANT, contact, "HAND-9", amount="9.00", date=dt.date(2026, 6, 1))  # keyed in by hand

    # An unnumbered invoice whose call, from the old app, timed out: Xero committed it after our client gave up.
    late = world.data.invoice(entity, customer, number=None, invoice_date=dt.date(2026, 6, 2), lines=one_line("300"))
    world.data.flush()
    saved = {task.task_id: task.retries for task in export_dag.tasks}
    for task in export_dag.tasks:
        task.retries = 0
    backend.faults.commit_late_next(10.5)  # after the connection's read timeout (10 s), within its margin (1 s)
    try:
        first_ok, _ = world.run()
    finally:
        for task in export_dag.tasks:
            task.retries = saved[task.task_id]
    assert not first_ok and world.export_status()[late] == "sending"
    deadline = time.monotonic() + 30
    while len([x for x in world.xero_invoices() if x["Type"] == "ACCREC"]) < 4:
        assert time.monotonic() < deadline, "the late commit never landed"
        time.sleep(0.2)
    backend.advance(3600)  # an hour later: Xero has forgotten the Idempotency-Key
    world.db.execute("UPDATE xero_sync.invoice_export SET last_sent_at = last_sent_at - interval '1 hour', "
                     "first_claimed_at = first_claimed_at - interval '1 hour' WHERE invoice_id = %s", (late,))

    move_to_a_custom_connection(world, monkeypatch)
    seen = len(backend.requests)
    assert world.run()[0], "the new app's run finds the old app's invoice"
    assert world.export_status() == {numbered: "exported", unnumbered: "exported", late: "exported"}
    assert [r for r in backend.requests[seen:] if r.method == "PUT" and r.path.endswith("/Invoices")] == []
    sync(world, billing_entity_ids=[entity], full_reconciliation=True)  # read by the new app

    assert open_drift(world) == [], "nothing missing, nothing unknown"
    ours = [x for x in world.xero_invoices() if x["Type"] == "ACCREC" and x["InvoiceNumber"] != "HAND-9"]
    linked = {row[0] for row in world.db.execute("SELECT xero_invoice_id::text FROM xero_sync.invoice_export")}
    assert len(ours) == 3 and {x["InvoiceID"] for x in ours} == linked, "each Astute invoice in Xero once"
    assert len(backend.credit_notes(AU_TENANT)) == 1
    read = dict(world.db.execute("SELECT kind || ':' || xero_id, astute_id FROM xero_sync.xero_document "
                                 "WHERE missing_since IS NULL"))
    (credit_note, credit_note_xero_id) = world.db.execute(
        "SELECT credit_note_id, xero_credit_note_id FROM xero_sync.credit_note_export").fetchone()
    assert read == {**{f"invoice:{xero_id(world, 'invoice', i)}": i for i in (numbered, unnumbered, late)},
                    f"credit_note:{credit_note_xero_id}": credit_note}, "ours, and nothing keyed in by hand"
    # The new app's incremental read sees what happens to what the old app sent.
    backend.record_payment(AU_TENANT, xero_id(world, "invoice", unnumbered), "220.00", dt.date(2026, 7, 1))
    sync(world)
    assert payment(world, unnumbered)["state"] == "paid"
    assert {r.client_id for r in backend.requests[seen:] if r.path.startswith("/api.xro/")} == {"custom-au"}
