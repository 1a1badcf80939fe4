"""Issue 19, finding 9: lock dates, end to end. An organisation's PeriodLockDate and EndOfYearLockDate are read
with its chart; the export DAG holds back a document dated on or before the later of them (Xero would refuse
it) with the reason and what to do, its neighbours still go, and a preview shows the same before anything is sent.

Real PostgreSQL, the Xero sandbox over HTTP through xero-python, the real DAG via dag.test().
"""

from __future__ import annotations

import datetime as dt

import pytest

from astute_xero.report import integration as report
from tests.dags.conftest import AU_TENANT, GO_LIVE, NZ_TENANT
from tests.dags.test_preview import (  # noqa: F401 (an autouse fixture, imported to apply here too)
    assert_only_reads, export_state, held_reasons, latest_run, no_continuations_left_behind, plans, preview,
)

pytestmark = pytest.mark.e2e

PERIOD_LOCK = dt.date(2026, 6, 30)
YEAR_END_LOCK = dt.date(2026, 3, 31)
DAY = dt.timedelta(days=1)
WHAT_TO_DO = "ask your Xero adviser to move the lock date, or re-date the invoice in Astute"


def test_the_export_holds_a_document_dated_on_the_lock_date_with_the_reason_and_sends_its_neighbours(world):
    world.xero.backend.set_lock_dates(AU_TENANT, period_lock_date=PERIOD_LOCK, end_of_year_lock_date=YEAR_END_LOCK)
    au = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    nz = world.data.entity("Astute NZ", region="NZ", tenant_id=NZ_TENANT, go_live=GO_LIVE)  # no lock dates
    customer = world.data.customer("Harbour Constructions")
    before = world.data.invoice(au, customer, number="AU-29", invoice_date=PERIOD_LOCK - DAY)
    on = world.data.invoice(au, customer, number="AU-30", invoice_date=PERIOD_LOCK)
    after = world.data.invoice(au, customer, number="AU-01", invoice_date=PERIOD_LOCK + DAY)
    credit_on = world.data.credit_note(au, customer, number="AU-CN-30", credit_date=PERIOD_LOCK)
    nz_same_day = world.data.invoice(nz, customer, number="NZ-30", invoice_date=PERIOD_LOCK)
    world.data.flush()

    ok, _ = world.run()
    assert ok

    # Nothing dated in the locked period reached Xero, so Xero refused nothing; its neighbours went.
    assert world.export_status() == {after: "exported", nz_same_day: "exported"}
    assert [i["InvoiceNumber"] for i in world.xero_invoices(AU_TENANT)] == ["AU-01"]
    assert world.xero.backend.credit_notes(AU_TENANT) == []
    export_run = latest_run(world, "export")
    held = held_reasons(world, export_run)
    assert set(held) == {("invoice", before), ("invoice", on), ("credit_note", credit_on)}
    ((rule, message),) = held[("invoice", on)]
    assert rule == "lock_date"
    assert message.startswith("Invoice AU-30 is dated 2026-06-30, on or before the period lock date 2026-06-30 "
                              "of the Xero organisation 'Astute AU'")
    assert WHAT_TO_DO in message
    # The organisation was read once more for its chart (GET /Organisation), within its budget and logged.
    (organisation_reads,) = world.db.execute(
        "SELECT count(*) FROM xero_sync.api_log WHERE run_id = %s AND endpoint = 'Organisation' AND method = 'GET'",
        (export_run,)).fetchone()
    assert organisation_reads == 2  # one per organisation

    # The report says what it is and where to fix it.
    built = report.build_report(world.db, au)
    blocked = {b.label: b for b in built.blocked}
    locked = blocked["Invoice AU-30"]
    assert locked.kind == report.VALIDATION_ERROR and WHAT_TO_DO in locked.reason
    (problem,) = locked.problems
    assert problem.rule == "lock_date"
    assert problem.fix.title == "The document is dated on or before the organisation's lock date in Xero"
    assert locked.astute_field(problem) == "astute.invoice.invoice_date"
    assert blocked["Credit note AU-CN-30"].astute_field(blocked["Credit note AU-CN-30"].problems[0]) == (
        "astute.credit_note.credit_date")
    assert "lock_date" in [fix.rule for fix in built.fixes]


def test_a_preview_shows_documents_in_a_locked_period_as_held_and_the_export_holds_the_same(world):
    world.xero.backend.set_lock_dates(AU_TENANT, end_of_year_lock_date=PERIOD_LOCK)
    au = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = world.data.customer("Coastal Freight")
    on = world.data.invoice(au, customer, number="P-30", invoice_date=PERIOD_LOCK)
    neighbours = [world.data.invoice(au, customer, number=f"P-0{n}", invoice_date=PERIOD_LOCK + n * DAY)
                  for n in (1, 2)]
    world.data.flush()
    state_before = export_state(world)

    requests, preview_run, _ = preview(world)

    assert_only_reads(requests)
    assert any(r.method == "GET" and r.path.endswith("/Organisation") for r in requests), "it read the lock dates"
    assert export_state(world) == state_before
    assert world.xero_invoices(AU_TENANT) == []
    plan = plans(world, preview_run)[au]
    assert plan.invoices == 2
    (hold,) = plan.held_documents
    assert (hold.label, hold.rules) == ("Invoice P-30", ("lock_date",))
    assert "on or before the end of year lock date 2026-06-30" in hold.reason and WHAT_TO_DO in hold.reason
    assert hold.fixes == ["The document is dated on or before the organisation's lock date in Xero: "
                          "Xero: Accounting > Advanced > Financial settings > Lock dates (your adviser), "
                          "or the document's date in Astute"]

    ok, _ = world.run()
    assert ok
    assert world.export_status() == {n: "exported" for n in neighbours}
    assert held_reasons(world, latest_run(world, "export")) == held_reasons(world, preview_run)
    assert set(held_reasons(world, preview_run)) == {("invoice", on)}
