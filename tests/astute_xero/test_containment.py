"""One organisation's trouble stays that organisation's: three organisations, one made to fail.

Every step that talks to Xero besides the chunk export (the chart read in validation, contact
resolution, allocation) stops the failing organisation for the run with its reason and its api_log
row, and the other organisations finish. Real PostgreSQL, the sandbox over HTTP, nothing mocked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg
import pytest

from astute_xero.export import allocation, chunk_planning, contacts, run_validation, sync_state
from astute_xero.report import integration as report, run_summary
from astute_xero.export.chunk_export import export_chunk
from astute_xero.operations.migrations import apply_migrations
from astute_xero.xero.pacing import Pacer
from astute_xero.export.validation import DocumentValidator
from astute_xero.xero.client import XeroClient
from devtools.astute_data import AstuteData, Line
from devtools.xero_setup import XeroApp, authorise_app
from astute_xero.xero.scopes import GRANULAR_SCOPES
from tests.astute_xero.conftest import sandbox_client

# Organisations are worked in tenant-id order: A first, B in the middle, C last.
ORGS = {
    "A": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa",
    "B": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb",
    "C": "cccccccc-cccc-4ccc-8ccc-cccccccccccc",
}
D = Decimal


@dataclass
class ThreeOrgs:
    db: psycopg.Connection
    data: AstuteData
    xero: object
    app: XeroApp
    client: XeroClient
    invoices: dict[str, list[int]] = field(default_factory=dict)
    credit_notes: dict[str, int] = field(default_factory=dict)
    run_id: int = 0

    # --- the steps, as the DAG orders them ------------------------------------------------
    def start(self) -> int:
        scope = sync_state.RunScope(None, None, dt.date(2026, 12, 31))
        self.run_id = sync_state.start_run(self.db, kind="export", dag_id="test",
                                           airflow_run_id=f"r{dt.datetime.now()}", scope=scope)
        sync_state.decide_entities(self.db, self.run_id, None)
        sync_state.select_documents(self.db, self.run_id, scope)
        return self.run_id

    def validate(self):
        return run_validation.validate_run(self.db, self.client, self.run_id, DocumentValidator())

    def resolve_contacts(self):
        return contacts.resolve_contacts(self.db, self.client, self.run_id)

    def export(self) -> list:
        keys = chunk_planning.plan_chunks(self.db, self.run_id, sync_state.exporting_tenants(self.db, self.run_id))
        for key in keys:
            export_chunk(self.db, self.client, key)
        return keys

    def allocate(self):
        return allocation.allocate_run(self.db, self.client, self.run_id)

    def finish(self) -> run_summary.RunSummary:
        return run_summary.finish_run(self.db, self.run_id)

    def run(self) -> run_summary.RunSummary:
        self.start()
        self.validate()
        self.resolve_contacts()
        self.export()
        self.allocate()
        return self.finish()

    # --- what happened ----------------------------------------------------------------------
    def stopped(self) -> dict[str, str]:
        return dict(self.db.execute(
            "SELECT tenant_id, detail FROM xero_sync.run_entity WHERE run_id = %s AND decision = 'stopped'",
            (self.run_id,)))

    def numbers_in_xero(self, org: str) -> set[str]:
        return {x["InvoiceNumber"] for x in self.xero.backend.invoices(ORGS[org])}

    def exported(self, org: str) -> bool:
        statuses = dict(self.db.execute("SELECT invoice_id, status FROM xero_sync.invoice_export"))
        return all(statuses.get(i) == "exported" for i in self.invoices[org])

    def allocation_status(self, org: str) -> str | None:
        row = self.db.execute("SELECT allocation_status FROM xero_sync.credit_note_export WHERE credit_note_id = %s",
                              (self.credit_notes[org],)).fetchone()
        return row[0] if row else None

    def api_log(self, org: str) -> list[tuple]:
        return self.db.execute(
            "SELECT method, endpoint, http_status, error FROM xero_sync.api_log WHERE run_id = %s AND tenant_id = %s "
            "ORDER BY id", (self.run_id, ORGS[org])).fetchall()

    def disconnect(self, org: str) -> None:
        """The organisation removes the app's connection in Xero (Settings > Connected apps)."""
        self.xero.backend.disconnect(self.app.client_id, ORGS[org])

    def assert_others_finished(self, *orgs: str) -> None:
        for org in orgs:
            assert self.exported(org), f"organisation {org}'s invoices are all exported"
            assert self.numbers_in_xero(org) == {f"{org}-1", f"{org}-2"}
            assert self.allocation_status(org) == "allocated", f"organisation {org}'s credit note is allocated"


@pytest.fixture
def orgs(db: psycopg.Connection, xero, database_url: str) -> Iterator[ThreeOrgs]:
    apply_migrations(db)
    for name, tenant_id in ORGS.items():
        xero.backend.add_tenant(f"Org {name}", tenant_id=tenant_id)
    app = authorise_app(xero.backend, list(ORGS.values()))
    client = sandbox_client(xero, app, database_url)
    data = AstuteData(db)
    data.regions()
    world = ThreeOrgs(db, data, xero, app, client)
    for name, tenant_id in ORGS.items():
        entity = data.entity(f"Entity {name}", tenant_id=tenant_id, go_live=dt.date(2026, 1, 1))
        customer = data.customer(f"Customer {name}")
        world.invoices[name] = [
            data.invoice(entity, customer, number=f"{name}-{n}", lines=[Line(quantity=D("1"), unit_amount=D("100"))])
            for n in (1, 2)
        ]
        world.credit_notes[name] = data.credit_note(entity, customer, invoice_id=world.invoices[name][0],
                                                    number=f"{name}-CN", lines=[Line(quantity=D("1"), unit_amount=D("10"))])
    data.flush()
    yield world
    client.close()


def assert_stopped_with_reason(world: ThreeOrgs, org: str, *words: str) -> str:
    stopped = world.stopped()
    assert list(stopped) == [ORGS[org]], f"only organisation {org} is stopped: {stopped}"
    reason = stopped[ORGS[org]]
    for word in words:
        assert word in reason, f"{word!r} not in the stop reason: {reason}"
    return reason


def assert_summary_says_stopped(summary: run_summary.RunSummary, org: str, reason: str) -> None:
    text = run_summary.render_summary(summary)
    assert f"STOPPED: {reason}" in text
    (entity,) = [e for e in summary.entities if e.tenant_id == ORGS[org]]
    assert entity.decision == "stopped"


# --- validation's chart read ---------------------------------------------------------------

def test_an_organisation_the_app_is_not_connected_to_is_stopped_at_validation_and_the_others_export(orgs):
    orgs.disconnect("B")
    summary = orgs.run()

    reason = assert_stopped_with_reason(orgs, "B", "no longer connected", "Re-connect")
    assert ("GET", "Accounts", 403) == orgs.api_log("B")[0][:3], "the refused call is in the api_log"
    orgs.assert_others_finished("A", "C")
    assert orgs.numbers_in_xero("B") == set()
    # Planning skipped it: no chunk for B, and its documents are left for the next run.
    (chunks,) = orgs.db.execute("SELECT count(*) FROM xero_sync.export_chunk WHERE run_id = %s AND tenant_id = %s",
                                (orgs.run_id, ORGS["B"])).fetchone()
    assert chunks == 0
    assert_summary_says_stopped(summary, "B", reason)
    (entity_b,) = [e for e in summary.entities if e.tenant_id == ORGS["B"]]
    assert entity_b.deferred == 3 and entity_b.unfinished == 0
    page = report.build_report(orgs.db, entity_b.billing_entity_id, None, dt.date(2026, 12, 31))
    assert reason in report.render_text(page) and report.render_html(page).count("Re-connect the organisation") == 1

    # Re-connected, the next run exports it.
    orgs.xero.backend.authorise(orgs.app.client_id, [ORGS["B"]], scope=GRANULAR_SCOPES)
    orgs.run()
    assert orgs.stopped() == {}
    orgs.assert_others_finished("A", "B", "C")


def test_xero_failing_a_chart_read_after_every_retry_stops_that_organisation_only(orgs):
    # A is read first: all of the client's attempts at its Accounts get a 503.
    orgs.xero.backend.faults.fail_next(5, status=503, path_prefix="/api.xro/2.0/Accounts", method="GET")
    summary = orgs.run()

    reason = assert_stopped_with_reason(orgs, "A", "503", "next run")
    assert [row[:3] for row in orgs.api_log("A")][-1] == ("GET", "Accounts", 503)
    orgs.assert_others_finished("B", "C")
    assert orgs.numbers_in_xero("A") == set()
    assert_summary_says_stopped(summary, "A", reason)


def test_a_daily_limit_at_validation_stops_that_organisation_only(orgs):
    orgs.xero.backend.faults.rate_limit_next(1, problem="day", retry_after=30_000,
                                             path_prefix="/api.xro/2.0/Accounts", method="GET")
    orgs.run()
    assert_stopped_with_reason(orgs, "A", "daily API limit")
    orgs.assert_others_finished("B", "C")


# --- contact resolution ---------------------------------------------------------------------

def test_a_daily_limit_while_matching_contacts_stops_that_organisation_only(orgs):
    orgs.start()
    orgs.validate()
    orgs.xero.backend.faults.rate_limit_next(1, problem="day", retry_after=30_000,
                                             path_prefix="/api.xro/2.0/Contacts", method="GET")
    result = orgs.resolve_contacts()
    assert result.organisations_stopped == 1
    assert_stopped_with_reason(orgs, "A", "daily API limit", "next run")
    assert orgs.api_log("A")[-1][:3] == ("GET", "Contacts", 429)
    orgs.export()
    orgs.allocate()
    orgs.assert_others_finished("B", "C")
    assert orgs.numbers_in_xero("A") == set()


def test_a_contact_create_whose_outcome_is_unknown_stops_the_organisation_and_is_safe_to_repeat(orgs):
    orgs.start()
    orgs.validate()
    orgs.xero.backend.faults.fail_next(1, status=503, path_prefix="/api.xro/2.0/Contacts", method="PUT")
    orgs.resolve_contacts()
    assert_stopped_with_reason(orgs, "A", "503", "next run")
    assert orgs.api_log("A")[-1][:3] == ("PUT", "Contacts", 503)
    orgs.export()
    orgs.allocate()
    orgs.assert_others_finished("B", "C")

    orgs.run()  # the next run: A's customer is found by name or created, once
    orgs.assert_others_finished("A", "B", "C")
    names = [c["Name"] for c in orgs.xero.backend.contacts(ORGS["A"])]
    assert names == ["Customer A"]


def test_a_contact_create_left_unanswered_fails_the_step_after_the_others_and_the_retry_finds_it_by_name(orgs):
    orgs.start()
    orgs.validate()
    # Xero creates A's Contact, but the answer never arrives: no status, so nothing says A is failing.
    orgs.xero.backend.faults.drop_after_commit_next(1, path_prefix="/api.xro/2.0/Contacts", method="PUT")
    with pytest.raises(contacts.ContactsUnfinished, match="Airflow"):
        orgs.resolve_contacts()
    assert orgs.stopped() == {}
    assert orgs.api_log("A")[-1][:2] == ("PUT", "Contacts") and orgs.api_log("A")[-1][2] is None
    links = dict(orgs.db.execute("SELECT tenant_id, xero_contact_name FROM xero_sync.contact_link"))
    assert set(links) == {ORGS["B"], ORGS["C"]}, "the other organisations' customers are linked"

    orgs.xero.backend.advance(3600)  # long after Xero forgot the Idempotency-Key
    orgs.resolve_contacts()  # Airflow's retry: found by name, not created again
    orgs.export()
    orgs.allocate()
    orgs.assert_others_finished("A", "B", "C")
    assert [c["Name"] for c in orgs.xero.backend.contacts(ORGS["A"])] == ["Customer A"]


def test_an_organisation_disconnected_before_its_contacts_are_checked_is_stopped(orgs):
    orgs.run()  # every customer linked
    for org in ORGS:
        orgs.data.invoice(orgs.db.execute("SELECT id FROM astute.billing_entity WHERE xero_tenant_id = %s",
                                          (ORGS[org],)).fetchone()[0],
                          orgs.db.execute("SELECT id FROM astute.customer WHERE name = %s",
                                          (f"Customer {org}",)).fetchone()[0], number=f"{org}-3")
    orgs.data.flush()
    orgs.db.execute("UPDATE astute.customer SET name = 'Customer C Renamed' WHERE name = 'Customer C'")
    orgs.start()
    orgs.validate()
    orgs.disconnect("B")  # after validation read its chart: the existing-link check meets the 403
    orgs.resolve_contacts()
    assert_stopped_with_reason(orgs, "B", "no longer connected", "Re-connect")
    assert orgs.api_log("B")[-1][:3] == ("GET", "Contacts", 403)
    orgs.export()
    assert "A-3" in orgs.numbers_in_xero("A") and "C-3" in orgs.numbers_in_xero("C")
    assert "B-3" not in orgs.numbers_in_xero("B")
    assert [c["Name"] for c in orgs.xero.backend.contacts(ORGS["C"])] == ["Customer C Renamed"], "C's rename went"


def test_a_rename_refused_for_a_spent_daily_limit_stops_the_organisation_instead_of_holding_the_customer(orgs):
    orgs.run()
    orgs.db.execute("UPDATE astute.customer SET name = name || ' Renamed'")
    entity_a = orgs.db.execute("SELECT id FROM astute.billing_entity WHERE xero_tenant_id = %s", (ORGS["A"],)).fetchone()[0]
    customer_a = orgs.db.execute("SELECT id FROM astute.customer WHERE name = 'Customer A Renamed'").fetchone()[0]
    orgs.data.invoice(entity_a, customer_a, number="A-3")
    orgs.data.flush()
    orgs.start()
    orgs.validate()
    orgs.xero.backend.faults.rate_limit_next(1, problem="day", retry_after=30_000,
                                             path_prefix="/api.xro/2.0/Contacts/", method="POST")
    orgs.resolve_contacts()
    assert_stopped_with_reason(orgs, "A", "daily API limit")
    (held,) = orgs.db.execute("SELECT count(*) FROM xero_sync.validation_issue WHERE run_id = %s",
                              (orgs.run_id,)).fetchone()
    assert held == 0, "a spent daily limit is not Xero refusing the name"
    assert orgs.api_log("A")[-1][:3] == ("POST", "Contacts", 429)


# --- allocation -------------------------------------------------------------------------------

def until_allocation(orgs: ThreeOrgs) -> None:
    orgs.start()
    orgs.validate()
    orgs.resolve_contacts()
    orgs.export()


def test_an_organisation_disconnected_before_allocation_is_stopped_and_the_others_allocate(orgs):
    until_allocation(orgs)
    orgs.disconnect("B")
    result = orgs.allocate()
    assert result.organisations_stopped == 1
    reason = assert_stopped_with_reason(orgs, "B", "no longer connected", "Re-connect")
    assert orgs.api_log("B")[-1][:3] == ("GET", "CreditNotes", 403)
    orgs.assert_others_finished("A", "C")
    assert orgs.allocation_status("B") is None, "nothing was claimed: Xero was never asked"
    summary = orgs.finish()
    assert_summary_says_stopped(summary, "B", reason)


def test_xero_failing_an_allocation_read_after_every_retry_stops_that_organisation_only(orgs):
    until_allocation(orgs)
    orgs.xero.backend.faults.fail_next(5, status=503, path_prefix="/api.xro/2.0/CreditNotes", method="GET")
    orgs.allocate()
    assert_stopped_with_reason(orgs, "A", "503")
    assert orgs.api_log("A")[-1][:3] == ("GET", "CreditNotes", 503)
    orgs.assert_others_finished("B", "C")
    assert orgs.allocation_status("A") is None


def test_an_allocation_answered_503_stops_that_organisation_and_the_next_run_reads_xero_first(orgs):
    until_allocation(orgs)
    orgs.xero.backend.faults.fail_next(1, status=503, path_prefix="/api.xro/2.0/CreditNotes/", method="PUT")
    orgs.allocate()
    assert_stopped_with_reason(orgs, "A", "503", "next run")
    assert orgs.api_log("A")[-1][:3] == ("PUT", "CreditNotes/Allocations", 503)
    orgs.assert_others_finished("B", "C")
    assert orgs.allocation_status("A") == "sending", "its outcome is unknown until Xero is read again"

    orgs.run()
    orgs.assert_others_finished("A", "B", "C")
    (note,) = [x for x in orgs.xero.backend.credit_notes(ORGS["A"])]
    assert len(note["Allocations"]) == 1, "allocated once"


def test_a_daily_limit_on_an_allocation_stops_that_organisation_only(orgs):
    until_allocation(orgs)
    orgs.xero.backend.faults.rate_limit_next(1, problem="day", retry_after=30_000,
                                             path_prefix="/api.xro/2.0/CreditNotes", method="GET")
    orgs.allocate()
    assert_stopped_with_reason(orgs, "A", "daily API limit")
    orgs.assert_others_finished("B", "C")


def test_a_transient_404_on_an_allocation_is_left_for_the_retry_not_recorded_as_refused(orgs):
    until_allocation(orgs)
    orgs.xero.backend.faults.fail_next(1, status=404, path_prefix="/api.xro/2.0/CreditNotes/", method="PUT")
    with pytest.raises(allocation.AllocationUnfinished):
        orgs.allocate()
    assert orgs.allocation_status("A") != "failed", "a 404 for a credit note just created is not Xero's final word"
    assert orgs.stopped() == {}
    assert orgs.allocation_status("B") == orgs.allocation_status("C") == "allocated"
    assert orgs.api_log("A")[-1][:3] == ("PUT", "CreditNotes/Allocations", 404)

    orgs.allocate()  # Airflow's retry
    orgs.assert_others_finished("A", "B", "C")
    (note,) = [x for x in orgs.xero.backend.credit_notes(ORGS["A"])]
    assert len(note["Allocations"]) == 1


def test_a_wait_for_an_organisations_slot_that_runs_out_is_contained_and_logged(orgs, database_url):
    """Another worker holds all five of A's concurrency slots; the wait is bounded. Nothing is sent to A,
    its api_log says why, B and C are linked, and Airflow's retry does A."""
    orgs.start()
    orgs.validate()
    impatient = sandbox_client(orgs.xero, orgs.app, database_url, max_slot_wait=dt.timedelta(seconds=0.3))
    holders = [Pacer(lambda: psycopg.connect(database_url, autocommit=True)) for _ in range(5)]
    held = [holder.call(ORGS["A"]) for holder in holders]
    for slot in held:
        slot.__enter__()
    try:
        with pytest.raises(contacts.ContactsUnfinished, match="slot"):
            contacts.resolve_contacts(orgs.db, impatient, orgs.run_id)
    finally:
        for slot in held:
            slot.__exit__(None, None, None)
        for holder in holders:
            holder.close()
        impatient.close()
    linked = {row[0] for row in orgs.db.execute("SELECT tenant_id FROM xero_sync.contact_link")}
    assert linked == {ORGS["B"], ORGS["C"]}
    (row,) = [r for r in orgs.api_log("A") if r[1] == "Contacts"]
    assert row[2] is None and row[3].startswith("not sent:") and "slot" in row[3]
    assert orgs.resolve_contacts().organisations_stopped == 0  # the retry, once A's slots are free
    assert {row[0] for row in orgs.db.execute("SELECT tenant_id FROM xero_sync.contact_link")} == set(ORGS.values())
