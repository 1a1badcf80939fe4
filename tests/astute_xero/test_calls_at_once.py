"""Issue 22: within one organisation, a step's calls that do not depend on each other go up to Xero's 5 at
once, never 6: Contact look-ups and creations, the chart's reads, allocations. Organisations stay side by
side. Real PostgreSQL, the sandbox over HTTP with latency (so that calls in progress overlap and the
sandbox's peak shows how many went at once), each caller with its own connection and client, as the DAG's
tasks make them (organisations.side_by_side).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import psycopg
import pytest

from astute_xero.export import allocation, contacts, organisations, run_validation, sync_state
from astute_xero.export.chunk_export import export_chunk
from astute_xero.export.validation import DocumentValidator
from astute_xero.operations.migrations import apply_migrations
from astute_xero.xero.pacing import OrganisationLimits, XeroLimits
from devtools.astute_data import AstuteData, Line
from devtools.xero_setup import authorise_app
from tests.astute_xero.conftest import TENANT, sandbox_client

D = Decimal
OTHER = "44444444-4444-4444-8444-444444444444"
SCOPE = sync_state.RunScope(None, None, dt.date(2026, 12, 31))
LATENCY_S = 0.4


def in_progress_peak(records, tenant: str, method: str, path_part: str) -> int:
    """The most of these calls in progress at once, from the sandbox's request log."""
    chosen = [r for r in records if r.tenant_id == tenant and r.method == method and path_part in r.path]
    events = sorted([(r.started, 1) for r in chosen] + [(r.ended, -1) for r in chosen])
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


class Organisations:
    """Organisations with an entity each, the app authorised for all, and the step's runner as the DAG makes it."""

    def __init__(self, db: psycopg.Connection, xero, database_url: str, tenants: list[str],
                 limits: XeroLimits = XeroLimits()):
        apply_migrations(db)
        self.db, self.xero, self.database_url, self.limits = db, xero, database_url, limits
        for n, tenant in enumerate(tenants):
            xero.backend.add_tenant(f"Org {n}", tenant_id=tenant)
        self.app = authorise_app(xero.backend, tenants)
        self.data = AstuteData(db)
        self.data.regions()
        self.entities = {tenant: self.data.entity(f"Entity {n}", tenant_id=tenant, go_live=dt.date(2026, 1, 1))
                         for n, tenant in enumerate(tenants)}
        self.clients = []

    def client(self):
        client = sandbox_client(self.xero, self.app, self.database_url, limits=self.limits)
        self.clients.append(client)
        return client

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.database_url, autocommit=True)

    def side_by_side(self) -> organisations.Runner:
        return organisations.side_by_side(self.connect, self.client)

    def select(self, stage: str = "ready") -> int:
        run_id = sync_state.start_run(self.db, kind="export", dag_id="test", airflow_run_id=f"r{dt.datetime.now()}",
                                      scope=SCOPE)
        sync_state.decide_entities(self.db, run_id, None)
        sync_state.select_documents(self.db, run_id, SCOPE)
        if stage:
            self.db.execute("UPDATE xero_sync.run_document SET stage = %s WHERE run_id = %s", (stage, run_id))
        return run_id

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def resolve_slowly(self, run_id: int) -> contacts.ContactResolution:
        """resolve_contacts as the DAG runs it, with Xero answering Contacts in LATENCY_S."""
        self.xero.backend.faults.latency(LATENCY_S, path_prefix="/api.xro/2.0/Contacts")
        try:
            return contacts.resolve_contacts(self.db, None, run_id, self.side_by_side())
        finally:
            self.close()


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 4 names (look-ups and creations alike), so that a few dozen customers make many calls."""
    monkeypatch.setattr(contacts, "NAMES_PER_LOOKUP", 4)
    monkeypatch.setattr(contacts, "CONTACTS_PER_CREATE", 4)


def customers_with_invoices(orgs: Organisations, tenant: str, count: int, existing: int) -> dict[int, str]:
    """`count` customers of the tenant's entity with an invoice each; the first `existing` already Contacts in Xero."""
    names = {}
    for n in range(count):
        name = f"Customer {tenant[:4]}-{n:03d}"
        customer = orgs.data.customer(name)
        orgs.data.invoice(orgs.entities[tenant], customer, number=f"{tenant[:4]}-{n}")
        names[customer] = name
        if n < existing:
            orgs.xero.backend.add_contact(tenant, name)
    orgs.data.flush()
    return names


def assert_linked_once(orgs: Organisations, tenant: str, names: dict[int, str]) -> None:
    links = orgs.db.execute("SELECT customer_id, xero_contact_id::text FROM xero_sync.contact_link WHERE tenant_id = %s",
                            (tenant,)).fetchall()
    assert sorted(customer for customer, _ in links) == sorted(names), "every customer linked, once"
    in_xero = {c["ContactID"]: c["Name"] for c in orgs.xero.backend.contacts(tenant)}
    assert len(in_xero) == len(names), "one Contact per customer: none created twice"
    assert {customer: in_xero[contact] for customer, contact in links} == names, "each to the Contact of its name"


def test_contact_look_ups_and_creations_of_one_organisation_go_five_at_once_never_six(db, xero, database_url, small_batches):
    orgs = Organisations(db, xero, database_url, [TENANT])
    names = customers_with_invoices(orgs, TENANT, 40, existing=8)  # 10 look-ups, 8 creations of 4
    run_id = orgs.select()
    result = orgs.resolve_slowly(run_id)

    assert (result.matched, result.created, result.held) == (8, 32, 0)
    assert_linked_once(orgs, TENANT, names)
    stats = xero.backend.call_stats(TENANT)
    assert stats.refused == {}, "no 429 of any kind, 'concurrent' included"
    assert xero.backend.peak_concurrency(TENANT) == 5, "the organisation's 5 calls at once, never 6"
    records = xero.backend.requests
    assert in_progress_peak(records, TENANT, "GET", "/Contacts") == 5, "look-ups five at once"
    assert in_progress_peak(records, TENANT, "PUT", "/Contacts") == 5, "creations five at once"
    logged = db.execute("SELECT method, count(*) FROM xero_sync.api_log WHERE run_id = %s AND endpoint = 'Contacts' "
                        "GROUP BY method ORDER BY method", (run_id,)).fetchall()
    assert logged == [("GET", 10), ("PUT", 8)], "one api_log row per call"

    # Again: nothing left to link, nothing created twice (the links are checked, 40 in one GET).
    again = contacts.resolve_contacts(db, None, orgs.select(), orgs.side_by_side())
    orgs.close()
    assert (again.matched, again.created, again.held) == (0, 0, 0)
    assert_linked_once(orgs, TENANT, names)


def test_two_organisations_side_by_side_each_reach_five(db, xero, database_url, small_batches):
    orgs = Organisations(db, xero, database_url, [TENANT, OTHER])
    names = {tenant: customers_with_invoices(orgs, tenant, 40, existing=0) for tenant in (TENANT, OTHER)}
    result = orgs.resolve_slowly(orgs.select())

    assert (result.matched, result.created) == (0, 80)
    for tenant in (TENANT, OTHER):
        assert_linked_once(orgs, tenant, names[tenant])
        assert xero.backend.call_stats(tenant).refused == {}
        assert xero.backend.peak_concurrency(tenant) == 5, f"{tenant}: its own 5 at once, never 6"
    both = [r for r in xero.backend.requests if r.tenant_id in (TENANT, OTHER)]
    events = sorted([(r.started, 1) for r in both] + [(r.ended, -1) for r in both])
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    assert peak > 5, "the two organisations side by side, not one after the other"


def test_an_organisation_allowed_fewer_calls_at_once_gets_that_many_callers(db, xero, database_url, small_batches):
    limits = XeroLimits(organisations={TENANT: OrganisationLimits(concurrent=3)})  # e.g. a connection's override
    orgs = Organisations(db, xero, database_url, [TENANT], limits=limits)
    names = customers_with_invoices(orgs, TENANT, 40, existing=0)
    orgs.resolve_slowly(orgs.select())
    assert_linked_once(orgs, TENANT, names)
    assert xero.backend.peak_concurrency(TENANT) == 3
    assert len(orgs.clients) == 3, "no caller opened beyond the organisation's concurrency"


def test_the_charts_five_reads_go_at_once(db, xero, database_url):
    orgs = Organisations(db, xero, database_url, [TENANT])
    customer = orgs.data.customer("Harbour Constructions")
    orgs.data.invoice(orgs.entities[TENANT], customer, number="INV-1")
    orgs.data.flush()
    run_id = orgs.select(stage="")
    xero.backend.faults.latency(LATENCY_S, path_prefix="/api.xro/2.0/")
    try:
        summary = run_validation.validate_run(db, None, run_id, DocumentValidator(), orgs.side_by_side())
    finally:
        orgs.close()
    assert (summary.checked, summary.held, summary.organisations_stopped) == (1, 0, 0)
    assert xero.backend.peak_concurrency(TENANT) == 5, "Accounts, TaxRates, Currencies, TrackingCategories, Organisation"
    assert xero.backend.call_stats(TENANT).refused == {}
    (logged,) = db.execute("SELECT count(*) FROM xero_sync.api_log WHERE run_id = %s", (run_id,)).fetchone()
    assert logged == 5, "one api_log row per read"


def test_allocations_of_one_organisation_go_five_at_once_each_once_and_for_the_right_amount(pipeline, database_url):
    data, xero = pipeline.data, pipeline.xero
    customer = data.customer("Coastal Labour")
    one_each = {}
    for n in range(12):  # twelve credit notes, each of its own invoice
        invoice = data.invoice(pipeline.entity, customer, number=f"INV-{n}", lines=[Line(quantity=D("1"), unit_amount=D("100"))])
        one_each[data.credit_note(pipeline.entity, customer, invoice_id=invoice, number=f"CN-{n}",
                                  lines=[Line(quantity=D("1"), unit_amount=D("30"))])] = invoice
    shared = data.invoice(pipeline.entity, customer, number="SHARED", lines=[Line(quantity=D("1"), unit_amount=D("100"))])
    first = data.credit_note(pipeline.entity, customer, invoice_id=shared, number="CN-S1",
                             lines=[Line(quantity=D("1"), unit_amount=D("60"))])
    second = data.credit_note(pipeline.entity, customer, invoice_id=shared, number="CN-S2",
                              lines=[Line(quantity=D("1"), unit_amount=D("60"))])
    data.flush()
    for key in pipeline.plan():  # the invoices, then the credit notes, in Xero
        export_chunk(pipeline.db, pipeline.client, key)
    # Allocations are PUT /CreditNotes/{id}/Allocations: slow them, and only them.
    xero.backend.faults.latency(LATENCY_S, path_prefix="/api.xro/2.0/CreditNotes/")
    callers = []

    def client():
        callers.append(sandbox_client(xero, pipeline.app, database_url))
        return callers[-1]

    def connect():
        return psycopg.connect(database_url, autocommit=True)

    try:
        summary = allocation.allocate_run(pipeline.db, None, pipeline.run_id, organisations.side_by_side(connect, client))
    finally:
        for c in callers:
            c.close()

    assert (summary.allocated, summary.nothing, summary.failed) == (14, 0, 0)
    records = xero.backend.requests
    assert in_progress_peak(records, TENANT, "PUT", "/Allocations") == 5, "allocations five at once"
    assert xero.backend.peak_concurrency(TENANT) == 5, "never 6"
    assert xero.backend.call_stats(TENANT).refused == {}
    puts = [r for r in records if r.method == "PUT" and r.path.endswith("/Allocations")]
    assert len(puts) == 14, "each credit note allocated once"
    (logged,) = pipeline.db.execute("SELECT count(*) FROM xero_sync.api_log WHERE run_id = %s AND method = 'PUT' "
                                    "AND endpoint = 'CreditNotes/Allocations'", (pipeline.run_id,)).fetchone()
    assert logged == 14, "one api_log row per allocation"

    status = pipeline.credit_note_status()
    invoices = {x["InvoiceID"]: x for x in xero.backend.invoices(TENANT)}
    notes = {x["CreditNoteID"]: x for x in xero.backend.credit_notes(TENANT)}
    xero_ids = dict(pipeline.db.execute("SELECT credit_note_id, xero_credit_note_id::text FROM xero_sync.credit_note_export"))
    for credit_note in one_each:
        total = D(str(notes[xero_ids[credit_note]]["Total"]))
        assert status[credit_note][1:] == ("allocated", total), "the whole credit: its invoice owes more"
    (shared_xero_id,) = pipeline.db.execute("SELECT xero_invoice_id::text FROM xero_sync.invoice_export WHERE invoice_id = %s",
                                            (shared,)).fetchone()
    shared_total = D(str(invoices[shared_xero_id]["Total"]))
    first_total = D(str(notes[xero_ids[first]]["Total"]))
    assert status[first][1:] == ("allocated", first_total)
    assert status[second][1:] == ("allocated", shared_total - first_total), "the second only what the first left"
    assert D(str(invoices[shared_xero_id]["AmountDue"])) == 0 and invoices[shared_xero_id]["Status"] == "PAID"

    again = allocation.allocate_run(pipeline.db, pipeline.client, pipeline.run_id)
    assert (again.allocated, again.nothing, again.failed) == (0, 0, 0)
    assert sum(1 for r in xero.backend.requests if r.method == "PUT" and r.path.endswith("/Allocations")) == 14, \
        "nothing allocated twice"


class FakeConnection:
    closed = broken = False

    def close(self) -> None:
        self.closed = True


def test_callers_are_shared_within_a_bound_and_kept_for_organisations_yet_to_start():
    opened = []

    def connect():
        opened.append(FakeConnection())
        return opened[-1]

    callers = organisations.Callers(connect, lambda: None, size=4, organisations=2)
    first = callers.take(wait=True)  # the first organisation's own
    borrowed = [callers.take(wait=False), callers.take(wait=False)]
    assert None not in borrowed and callers.take(wait=False) is None, "one kept for the second organisation"
    second = callers.take(wait=True)
    assert second is not None and len(opened) == 4 and callers.take(wait=False) is None, "never more than 4"
    callers.give_back(borrowed[0])
    assert callers.take(wait=False) is borrowed[0], "given back, lent again, not opened anew"
    for caller in (first, second, borrowed[0], borrowed[1]):
        callers.give_back(caller)
    callers.close()
    assert all(conn.closed for conn in opened)


def test_an_item_that_fails_stops_those_not_started_and_its_error_is_raised_after_the_others_finish():
    callers = organisations.Callers(FakeConnection, lambda: None, size=5, organisations=1)
    organisation = organisations.Organisation("t", "Org", callers.take(wait=True), callers, width=5)
    done = []

    def work(conn, client, item):
        if item == 3:
            raise ValueError("three")
        done.append(item)
        return item * 10

    assert organisation.at_once(work, [0, 1, 2]) == [0, 10, 20], "results in the items' order"
    done.clear()
    with pytest.raises(ValueError, match="three"):
        organisation.at_once(work, range(100))
    assert len(done) < 99, "the items not started when one failed are not started"


def test_a_creation_answered_503_while_five_go_at_once_stops_only_its_organisation_and_is_safe_to_repeat(
        db, xero, database_url, small_batches):
    orgs = Organisations(db, xero, database_url, [TENANT, OTHER])
    names = {tenant: customers_with_invoices(orgs, tenant, 40, existing=0) for tenant in (TENANT, OTHER)}
    run_id = orgs.select()
    xero.backend.faults.fail_next(1, status=503, path_prefix="/api.xro/2.0/Contacts", method="PUT")
    result = orgs.resolve_slowly(run_id)

    assert result.organisations_stopped == 1
    (stopped,) = [tenant for (tenant,) in db.execute(
        "SELECT tenant_id FROM xero_sync.run_entity WHERE run_id = %s AND decision = 'stopped'", (run_id,))]
    (other,) = {TENANT, OTHER} - {stopped}
    assert_linked_once(orgs, other, names[other])
    assert xero.backend.peak_concurrency(other) == 5
    logged = db.execute("SELECT count(*) FILTER (WHERE http_status = 503), count(*) FROM xero_sync.api_log "
                        "WHERE run_id = %s AND tenant_id = %s AND method = 'PUT'", (run_id, stopped)).fetchone()
    puts = sum(1 for r in xero.backend.requests if r.tenant_id == stopped and r.method == "PUT")
    assert logged == (1, puts), "the failed creation and every other one sent, one api_log row each"

    # The next run: the stopped organisation's customers found by name or created, each once.
    again = contacts.resolve_contacts(db, None, orgs.select(), orgs.side_by_side())
    orgs.close()
    assert again.organisations_stopped == 0
    for tenant in (TENANT, OTHER):
        assert_linked_once(orgs, tenant, names[tenant])


def test_an_allocation_answered_503_while_five_go_at_once_stops_the_organisation_and_the_next_run_allocates_each_once(
        pipeline, database_url):
    data, xero = pipeline.data, pipeline.xero
    customer = data.customer("Coastal Labour")
    credit_notes = []
    for n in range(15):
        invoice = data.invoice(pipeline.entity, customer, number=f"INV-{n}", lines=[Line(quantity=D("1"), unit_amount=D("100"))])
        credit_notes.append(data.credit_note(pipeline.entity, customer, invoice_id=invoice, number=f"CN-{n}",
                                             lines=[Line(quantity=D("1"), unit_amount=D("30"))]))
    data.flush()
    for key in pipeline.plan():
        export_chunk(pipeline.db, pipeline.client, key)
    xero.backend.faults.latency(LATENCY_S, path_prefix="/api.xro/2.0/CreditNotes/")
    # Once five allocations are answered, the next one is answered 503 (the ones under way then carry on).
    xero.backend.faults.between_requests(
        lambda: xero.backend.faults.fail_next(1, status=503, path_prefix="/api.xro/2.0/CreditNotes/", method="PUT"),
        after=5, path_prefix="/api.xro/2.0/CreditNotes/", method="PUT")
    callers = []

    def client():
        callers.append(sandbox_client(xero, pipeline.app, database_url))
        return callers[-1]

    try:
        summary = allocation.allocate_run(pipeline.db, None, pipeline.run_id, organisations.side_by_side(
            lambda: psycopg.connect(database_url, autocommit=True), client))
    finally:
        for c in callers:
            c.close()
    assert summary.organisations_stopped == 1
    assert xero.backend.peak_concurrency(TENANT) == 5
    status = pipeline.credit_note_status()
    assert sum(1 for cn in credit_notes if status[cn][1] == "sending") == 1, "the one answered 503: outcome unknown"
    assert 5 <= summary.allocated < 14, "those under way finished and were recorded; the rest were not started"

    pipeline.run()  # the next run reads Xero first
    status = pipeline.credit_note_status()
    assert all(status[cn][1] == "allocated" for cn in credit_notes)
    notes = xero.backend.credit_notes(TENANT)
    assert all(len(note["Allocations"]) == 1 for note in notes), "each allocated once"
