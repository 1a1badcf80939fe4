"""Issue 14: a preview run shows what an export would send, hold back and leave, and writes nothing to Xero.

Real PostgreSQL, the Xero sandbox over HTTP through xero-python, the real DAG via dag.test(): a preview
(`preview: true`) and then the export that follows, compared.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from astute_xero.export import sync_state
from astute_xero.operations.migrations import apply_migrations
from astute_xero.report import integration as report
from astute_xero.report import run_summary
from devtools.astute_data import Line
from tests.dags.conftest import AU_TENANT, GO_LIVE, NZ_TENANT

pytestmark = pytest.mark.e2e

TOKEN_ENDPOINT = "/connect/token"


@pytest.fixture(autouse=True)
def no_continuations_left_behind():
    """An export that leaves documents waiting triggers the run that continues it (run id continues_<export
    run>), in Airflow's metadata database, which outlives each test's Astute database (whose export run ids
    start again at 1): remove those of earlier tests first, so that a continuation here is not refused as
    already existing, and this test's after it."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    def remove_continuations() -> None:
        with create_session() as session:
            for run in session.query(DagRun).filter(DagRun.id.in_(continuation_runs())):
                session.delete(run)

    remove_continuations()
    yield
    remove_continuations()


def continuation_runs() -> set[int]:
    """The ids of the export's continuation runs in Airflow's metadata database."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return {run_id for (run_id,) in session.query(DagRun.id).filter(
            DagRun.dag_id == "xero_invoice_export", DagRun.run_id.like("continues_%"))}


def latest_run(world, kind: str) -> int:
    (run_id,) = world.db.execute("SELECT max(run_id) FROM xero_sync.export_run WHERE kind = %s", (kind,)).fetchone()
    return run_id


def plans(world, run_id: int) -> dict[int, run_summary.EntityPlan]:
    scope = sync_state.run_scope(world.db, run_id)
    return run_summary.preview_plans(world.db, run_id, scope.date_from, scope.date_to)


def preview(world, **conf):
    """Trigger a preview; return the sandbox requests it made and its export run id."""
    before = len(world.xero.backend.requests)
    ok, dag_run = world.run(preview=True, **conf)
    assert ok
    return world.xero.backend.requests[before:], latest_run(world, "preview"), dag_run


def assert_only_reads(requests) -> None:
    writes = [(r.method, r.path) for r in requests if r.method != "GET" and r.path != TOKEN_ENDPOINT]
    assert writes == [], f"a preview wrote to Xero: {writes}"
    assert any(r.method == "GET" and r.path.endswith("/Accounts") for r in requests), "it read each chart"


def export_state(world) -> tuple:
    """Everything a preview must leave as it is: the export flags, the Contact links, the holds."""
    apply_migrations(world.db)  # before a first run, the tables are there and empty
    return tuple(world.db.execute(sql).fetchall() for sql in (
        "SELECT * FROM xero_sync.invoice_export ORDER BY invoice_id",
        "SELECT * FROM xero_sync.credit_note_export ORDER BY credit_note_id",
        "SELECT customer_id, tenant_id, xero_contact_id, xero_contact_name FROM xero_sync.contact_link ORDER BY 1, 2",
        "SELECT kind, document_id FROM xero_sync.document_hold ORDER BY 1, 2",
    ))


def run_documents(world, run_id: int, stage: str, *, in_chunk: bool = False) -> set[tuple[str, int]]:
    return set(world.db.execute(
        "SELECT kind, document_id FROM xero_sync.run_document WHERE run_id = %s AND stage = %s"
        + (" AND chunk_no IS NOT NULL" if in_chunk else ""), (run_id, stage)).fetchall())


def held_reasons(world, run_id: int) -> dict[tuple[str, int], set[tuple[str, str]]]:
    held: dict[tuple[str, int], set[tuple[str, str]]] = {}
    for kind, document_id, rule, message in world.db.execute(
        "SELECT kind, document_id, rule, message FROM xero_sync.validation_issue WHERE run_id = %s", (run_id,)
    ):
        held.setdefault((kind, document_id), set()).add((rule, message))
    return held


def task_states(dag_run, *task_ids: str) -> dict[str, set[str]]:
    states: dict[str, set[str]] = {task_id: set() for task_id in task_ids}
    for ti in dag_run.get_task_instances():
        if ti.task_id in states:
            states[ti.task_id].add(str(ti.state))
    return states


def test_a_preview_over_two_organisations_writes_nothing_and_the_export_then_sends_exactly_what_it_said(world):
    au = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    nz = world.data.entity("Astute NZ", region="NZ", tenant_id=NZ_TENANT, go_live=GO_LIVE)
    existing = world.xero.backend.add_contact(AU_TENANT, "ACME MINING PTY LTD")
    acme = world.data.customer("Acme Mining Pty Ltd")  # its Contact exists: matched, not created
    harbour = world.data.customer("Harbour Constructions")  # no Contact yet in either organisation
    kiwi = world.data.customer("Kiwi Builders Ltd")
    good = [world.data.invoice(au, acme, number=f"AU-{n}") for n in range(1, 4)]
    good.append(world.data.invoice(au, harbour, number="AU-H1"))
    bad_gl = world.data.invoice(au, harbour, number="AU-BADGL", lines=[Line(account_code="999")])
    credits_good = world.data.credit_note(au, acme, invoice_id=good[0], number="CN-1",
                                          lines=[Line(unit_amount=Decimal("10.00"), quantity=Decimal("1"))])
    credits_held = world.data.credit_note(au, harbour, invoice_id=bad_gl, number="CN-2")
    nz_good = [world.data.invoice(nz, kiwi, number=f"NZ-{n}") for n in range(1, 3)]
    nz_good.append(world.data.invoice(nz, harbour, number="NZ-H1"))
    nz_eur = world.data.invoice(nz, kiwi, number="NZ-EUR", currency="EUR")
    world.data.flush()
    state_before = export_state(world)

    requests, preview_run, dag_run = preview(world)

    # Only reads, each through the pipeline's client (logged in the API log, within the organisation's budget).
    assert_only_reads(requests)
    assert {r.tenant_id for r in requests if r.tenant_id} == {AU_TENANT, NZ_TENANT}
    logged = world.db.execute("SELECT method, count(*) FROM xero_sync.api_log WHERE run_id = %s GROUP BY 1",
                              (preview_run,)).fetchall()
    assert logged == [("GET", len([r for r in requests if r.path != TOKEN_ENDPOINT]))]
    # Nothing changed in Astute's export state or in Xero.
    assert export_state(world) == state_before
    assert [c["Name"] for c in world.xero.backend.contacts(AU_TENANT)] == ["ACME MINING PTY LTD"]
    assert world.xero.backend.contacts(NZ_TENANT) == []
    assert world.xero_invoices(AU_TENANT) == world.xero_invoices(NZ_TENANT) == []
    assert world.xero.backend.credit_notes(AU_TENANT) == []
    # A run of its own kind, and nothing after the first write runs for it.
    assert world.db.execute("SELECT kind, status FROM xero_sync.export_run WHERE run_id = %s",
                            (preview_run,)).fetchone() == ("preview", "previewed")
    states = task_states(dag_run, "export_invoice_chunks", "export_credit_note_chunks", "allocate_credit_notes",
                         "continue_backlog")
    assert all(found == {"skipped"} for found in states.values()), states

    # What it says.
    plan = plans(world, preview_run)
    assert (plan[au].invoices, plan[au].credit_notes, plan[au].chunks) == (4, 1, 2)
    assert (plan[nz].invoices, plan[nz].credit_notes, plan[nz].chunks) == (3, 0, 1)
    assert {h.label for h in plan[au].held_documents} == {"Invoice AU-BADGL"}
    assert {h.label for h in plan[nz].held_documents} == {"Invoice NZ-EUR"}
    assert plan[au].waiting == 1 and plan[au].left_for_later == plan[nz].left_for_later == 0
    creates = {(c.tenant_id, c.astute_name) for p in plan.values() for c in p.contacts_doing("create")}
    assert creates == {(AU_TENANT, "Harbour Constructions"), (NZ_TENANT, "Harbour Constructions"),
                       (NZ_TENANT, "Kiwi Builders Ltd")}
    (match,) = plan[au].contacts_doing("match")
    assert (match.customer_id, match.xero_contact_id) == (acme, existing), "a match is recorded, not linked"
    would_go = run_documents(world, preview_run, "ready", in_chunk=True)
    (preview_chunks,) = world.db.execute("SELECT count(*) FROM xero_sync.export_chunk WHERE run_id = %s",
                                         (preview_run,)).fetchone()

    ok, _ = world.run()
    assert ok
    export_run = latest_run(world, "export")

    # The export sends exactly what the preview said: the same documents, in as many calls, and the same Contacts.
    sent = set(world.db.execute(
        "SELECT 'invoice', invoice_id FROM xero_sync.invoice_export WHERE status = 'exported' "
        "UNION ALL SELECT 'credit_note', credit_note_id FROM xero_sync.credit_note_export WHERE status = 'exported'"
    ).fetchall())
    assert sent == would_go == {("invoice", i) for i in good + nz_good} | {("credit_note", credits_good)}
    puts = world.db.execute(
        "SELECT count(*) FROM xero_sync.api_log WHERE run_id = %s AND method = 'PUT' "
        "AND endpoint IN ('Invoices', 'CreditNotes')", (export_run,)).fetchone()[0]
    assert puts == preview_chunks == 3
    assert (len(world.xero_invoices(AU_TENANT)), len(world.xero_invoices(NZ_TENANT))) == (plan[au].invoices, plan[nz].invoices)
    assert len(world.xero.backend.credit_notes(AU_TENANT)) == plan[au].credit_notes
    created = {(tenant, c["Name"]) for tenant in (AU_TENANT, NZ_TENANT) for c in world.xero.backend.contacts(tenant)
               if c["ContactID"] != existing}
    assert created == creates
    assert dict(world.db.execute("SELECT customer_id, xero_contact_id::text FROM xero_sync.contact_link "
                                 "WHERE tenant_id = %s", (AU_TENANT,)))[acme] == existing
    # The same documents held back, for the same reasons; the same credit note waiting.
    assert held_reasons(world, export_run) == held_reasons(world, preview_run)
    assert set(held_reasons(world, preview_run)) == {("invoice", bad_gl), ("invoice", nz_eur)}
    assert run_documents(world, export_run, "waiting") == run_documents(world, preview_run, "waiting") == {
        ("credit_note", credits_held)}


def test_a_rename_is_previewed_not_pushed_and_a_taken_name_is_held_as_the_export_holds_it(world):
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    renamed = world.data.customer("Coastal Freight")
    blocked = world.data.customer("Metro Health")
    world.data.invoice(entity, renamed, number="R-1")
    world.data.invoice(entity, blocked, number="B-1")
    world.data.flush()
    ok, _ = world.run()
    assert ok
    contacts = {c["Name"]: c["ContactID"] for c in world.xero.backend.contacts(AU_TENANT)}
    world.xero.backend.add_contact(AU_TENANT, "Metro Health Services")  # somebody else has the new name
    world.db.execute("UPDATE astute.customer SET name = 'Coastal Freight & Logistics' WHERE id = %s", (renamed,))
    world.db.execute("UPDATE astute.customer SET name = 'Metro Health Services' WHERE id = %s", (blocked,))
    r2 = world.data.invoice(entity, renamed, number="R-2")
    b2 = world.data.invoice(entity, blocked, number="B-2")
    world.data.flush()
    state_before = export_state(world)

    requests, preview_run, _ = preview(world)

    assert_only_reads(requests)
    assert export_state(world) == state_before, "the link keeps the Contact's old name until the export renames it"
    by_id = {c["ContactID"]: c["Name"] for c in world.xero.backend.contacts(AU_TENANT)}
    assert by_id[contacts["Coastal Freight"]] == "Coastal Freight", "previewed, not pushed"
    (plan,) = plans(world, preview_run).values()
    (rename,) = plan.contacts_doing("rename")
    assert (rename.xero_contact_id, rename.xero_contact_name, rename.astute_name) == (
        contacts["Coastal Freight"], "Coastal Freight", "Coastal Freight & Logistics")
    assert run_documents(world, preview_run, "ready", in_chunk=True) == {("invoice", r2)}
    assert {rule for rule, _ in held_reasons(world, preview_run)[("invoice", b2)]} == {"contact_rename_refused"}
    assert "'Metro Health Services'" in plan.held_documents[0].reason

    ok, _ = world.run()
    assert ok
    export_run = latest_run(world, "export")
    by_id = {c["ContactID"]: c["Name"] for c in world.xero.backend.contacts(AU_TENANT)}
    assert by_id[contacts["Coastal Freight"]] == "Coastal Freight & Logistics", "the export pushes what was previewed"
    assert run_documents(world, export_run, "ready", in_chunk=True) == {("invoice", r2)}
    assert {rule for rule, _ in held_reasons(world, export_run)[("invoice", b2)]} == {"contact_rename_refused"}
    assert world.export_status()[r2] == "exported" and b2 not in world.export_status()


def test_the_report_and_the_summary_show_the_latest_previews_validation_errors(world, caplog):
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = world.data.customer("Sunrise Aged Care")
    world.data.invoice(entity, customer, number="OK-1")
    world.data.invoice(entity, customer, number="OK-2")
    bad = world.data.invoice(entity, customer, number="NO-GL", lines=[Line(account_code=None)])
    world.data.flush()

    caplog.clear()
    _, preview_run, _ = preview(world)
    log = caplog.text
    assert f"Xero export PREVIEW run {preview_run} - nothing was written to Xero" in log
    assert "2 invoice(s) and 0 credit note(s) in 1 chunk(s)" in log and "create 1 Contact(s)" in log
    assert "Invoice NO-GL: " in log and "What to fix: A line has no GL account code" in log
    assert "create 'Sunrise Aged Care'" in log

    built = report.build_report(world.db, entity)
    assert built.preview is not None and built.preview.run_id == preview_run
    assert built.preview.headline.startswith(f"Latest preview (run {preview_run}, ")
    assert built.preview.headline.endswith(": 2 would go, 1 held back")
    (blocked,) = [b for b in built.blocked if b.document_id == bad]
    assert blocked.kind == report.VALIDATION_ERROR and blocked.from_preview_run == preview_run
    assert "no GL account code" in blocked.reason
    assert built.invoices_to_export == 3, "a preview exports nothing"
    assert [(r.run_id, r.kind, r.status) for r in built.runs] == [(preview_run, "preview", "previewed")]
    text = report.render_text(built)
    assert built.preview.headline in text and f"(found by preview run {preview_run})" in text
    page = report.render_html(built)
    assert 'id="latest-preview"' in page and f'data-found-by-preview="{preview_run}"' in page
    assert "Sunrise Aged Care" in page  # the Contact it would create

    # After the export, the errors are the export's own, and the preview says an export has run since.
    ok, _ = world.run()
    assert ok
    built = report.build_report(world.db, entity)
    (blocked,) = [b for b in built.blocked if b.document_id == bad]
    assert blocked.from_preview_run is None
    assert built.preview.run_id == preview_run and built.preview.export_since == latest_run(world, "export")


def test_a_preview_of_a_backlog_says_what_is_left_for_later_and_triggers_no_run(world, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "2")  # Airflow's map limit, scaled down: 2 chunk tasks a kind
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = world.data.customer("Harbour Constructions Pty Ltd")
    held = world.data.invoice(entity, customer, number="OLDEST-BAD", invoice_date=dt.date(2026, 5, 1),
                              lines=[Line(tax_type="GSTFREE")])
    for n in range(250):
        world.data.invoice(entity, customer, number=f"B-{n:04d}", invoice_date=dt.date(2026, 6, 1) + dt.timedelta(days=n % 30))
    world.data.flush()

    continuations = continuation_runs()
    requests, preview_run, dag_run = preview(world)
    assert_only_reads(requests)
    assert continuation_runs() == continuations, "no run follows a preview"
    (plan,) = plans(world, preview_run).values()
    # 2 chunks of 100 is all one run has room for: the oldest (the invalid one among them) are selected.
    assert (plan.invoices, plan.chunks, plan.held, plan.left_for_later) == (199, 2, 1, 51)
    assert set(held_reasons(world, preview_run)) == {("invoice", held)}
    would_go = run_documents(world, preview_run, "ready", in_chunk=True)

    ok, _ = world.run()
    assert ok
    export_run = latest_run(world, "export")
    assert run_documents(world, export_run, "ready", in_chunk=True) == would_go
    assert {("invoice", i) for i, status in world.export_status().items() if status == "exported"} == would_go
    assert len(world.api_log()) == plan.chunks
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        (follower,) = session.query(DagRun).filter(DagRun.id.in_(continuation_runs() - continuations)).all()
        assert follower.conf["continues_run_id"] == export_run, "the export, unlike its preview, continues the backlog"


def test_a_previews_xero_client_refuses_every_write_before_sending_it(world):
    from astute_xero.xero.client import ReadOnlyRefused
    from astute_xero.hooks import XeroHook

    apply_migrations(world.db)
    contact_id = world.xero.backend.add_contact(AU_TENANT, "Harbour Constructions")
    client = XeroHook().client(read_only=True)
    try:
        before = len(world.xero.backend.requests)
        with pytest.raises(ReadOnlyRefused, match="PUT Contacts"):
            client.create_contacts(AU_TENANT, ["Someone New"], "astute-contacts-test")
        with pytest.raises(ReadOnlyRefused, match="POST Contacts"):
            client.rename_contact(AU_TENANT, contact_id, "Harbour Constructions Group")
        found, call = client.contacts_named(AU_TENANT, ["Harbour Constructions"])  # reads still go
    finally:
        client.close()
    assert call.method == "GET" and [str(c.contact_id) for c in found] == [contact_id]
    assert [(r.method, r.path) for r in world.xero.backend.requests[before:] if r.path != TOKEN_ENDPOINT] == [
        ("GET", "/api.xro/2.0/Contacts")]
    assert [c["Name"] for c in world.xero.backend.contacts(AU_TENANT)] == ["Harbour Constructions"]
