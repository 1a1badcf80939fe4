"""Issue 19, finding 9: an organisation's lock dates are read with its chart, and a document dated on or before
them is held back with the reason and what to do, instead of being sent for Xero to refuse.

Real PostgreSQL, the Xero sandbox over HTTP through xero-python; the export steps as the DAG orders them.
"""

from __future__ import annotations

import datetime as dt

from astute_xero.export import allocation, chunk_planning, contacts, run_validation, sync_state
from astute_xero.export.chunk_export import export_chunk
from astute_xero.export.validation import DocumentValidator
from astute_xero.report import run_summary
from tests.astute_xero.conftest import TENANT

PERIOD_LOCK = dt.date(2026, 6, 30)
YEAR_END_LOCK = dt.date(2026, 3, 31)
DAY = dt.timedelta(days=1)


def validate_and_export(pipeline) -> int:
    """One run as the DAG orders it: select, validate against the chart, contacts, chunks, allocations."""
    db, client = pipeline.db, pipeline.client
    run_id = pipeline.select()
    run_validation.validate_run(db, client, run_id, DocumentValidator())
    contacts.resolve_contacts(db, client, run_id)
    for key in chunk_planning.plan_chunks(db, run_id, sync_state.exporting_tenants(db, run_id)):
        export_chunk(db, client, key)
    allocation.allocate_run(db, client, run_id)
    run_summary.finish_run(db, run_id)
    return run_id


def issues(pipeline, run_id: int) -> dict[tuple[str, int], list[tuple[str, str]]]:
    found: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for kind, document_id, rule, message in pipeline.db.execute(
        "SELECT kind, document_id, rule, message FROM xero_sync.validation_issue WHERE run_id = %s", (run_id,)
    ):
        found.setdefault((kind, document_id), []).append((rule, message))
    return found


def test_the_chart_reads_the_organisations_lock_dates(pipeline):
    pipeline.xero.backend.set_lock_dates(TENANT, period_lock_date=PERIOD_LOCK, end_of_year_lock_date=YEAR_END_LOCK)
    chart, calls = pipeline.client.chart(TENANT, "Org")
    assert (chart.period_lock_date, chart.end_of_year_lock_date, chart.lock_date) == (
        PERIOD_LOCK, YEAR_END_LOCK, PERIOD_LOCK)
    assert "Organisation" in [call.endpoint for call in calls]
    assert all(call.method == "GET" for call in calls)

    pipeline.xero.backend.set_lock_dates(TENANT)
    chart, _ = pipeline.client.chart(TENANT, "Org")
    assert (chart.period_lock_date, chart.end_of_year_lock_date, chart.lock_date) == (None, None, None)


def test_a_document_dated_on_the_lock_date_is_held_with_the_reason_and_its_neighbours_go(pipeline):
    pipeline.xero.backend.set_lock_dates(TENANT, period_lock_date=PERIOD_LOCK, end_of_year_lock_date=YEAR_END_LOCK)
    data = pipeline.data
    customer = data.customer("Harbour Constructions")
    before = data.invoice(pipeline.entity, customer, number="LD-1", invoice_date=PERIOD_LOCK - DAY)
    on = data.invoice(pipeline.entity, customer, number="LD-2", invoice_date=PERIOD_LOCK)
    after = data.invoice(pipeline.entity, customer, number="LD-3", invoice_date=PERIOD_LOCK + DAY)
    credit_on = data.credit_note(pipeline.entity, customer, number="LD-CN-1", credit_date=PERIOD_LOCK)
    credit_after = data.credit_note(pipeline.entity, customer, invoice_id=after, number="LD-CN-2",
                                    credit_date=PERIOD_LOCK + DAY)
    data.flush()

    run_id = validate_and_export(pipeline)

    # Nothing dated in the locked period was sent (Xero would have refused it); its neighbours went.
    assert [i["InvoiceNumber"] for i in pipeline.xero.backend.invoices(TENANT)] == ["LD-3"]
    assert [c["CreditNoteNumber"] for c in pipeline.xero.backend.credit_notes(TENANT)] == ["LD-CN-2"]
    assert pipeline.status() == {after: "exported"}
    assert pipeline.credit_note_status()[credit_after][:2] == ("exported", "allocated")
    held = issues(pipeline, run_id)
    assert set(held) == {("invoice", before), ("invoice", on), ("credit_note", credit_on)}
    ((rule, message),) = held[("invoice", on)]
    assert rule == "lock_date"
    assert "Invoice LD-2" in message and "2026-06-30" in message
    assert "the period lock date 2026-06-30 of the Xero organisation 'Entity'" in message
    assert "ask your Xero adviser to move the lock date, or re-date the invoice in Astute" in message
    ((rule, message),) = held[("credit_note", credit_on)]
    assert rule == "lock_date" and "Credit note LD-CN-1" in message
    assert "re-date the credit note in Astute" in message

    # The adviser moves the period lock date back: the next run re-checks what it held and sends it.
    pipeline.xero.backend.set_lock_dates(TENANT, period_lock_date=dt.date(2026, 5, 31),
                                         end_of_year_lock_date=YEAR_END_LOCK)
    run_id = validate_and_export(pipeline)
    assert issues(pipeline, run_id) == {}
    assert pipeline.status() == {before: "exported", on: "exported", after: "exported"}
    assert sorted(c["CreditNoteNumber"] for c in pipeline.xero.backend.credit_notes(TENANT)) == ["LD-CN-1", "LD-CN-2"]


def test_the_end_of_year_lock_date_decides_when_it_is_the_later(pipeline):
    pipeline.xero.backend.set_lock_dates(TENANT, period_lock_date=YEAR_END_LOCK, end_of_year_lock_date=PERIOD_LOCK)
    data = pipeline.data
    customer = data.customer("Coastal Freight")
    locked = data.invoice(pipeline.entity, customer, number="EY-1", invoice_date=dt.date(2026, 5, 1))
    free = data.invoice(pipeline.entity, customer, number="EY-2", invoice_date=dt.date(2026, 7, 1))
    data.flush()

    run_id = validate_and_export(pipeline)

    assert pipeline.status() == {free: "exported"}
    ((rule, message),) = issues(pipeline, run_id)[("invoice", locked)]
    assert rule == "lock_date" and "the end of year lock date 2026-06-30" in message
