"""Credit notes: in Xero exactly once as ACCRECCREDIT, allocated to their invoice for no more than Xero allows,
waiting while their invoice is not in Xero. Real PostgreSQL, the sandbox over HTTP."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from astute_xero.export import allocation, run_validation
from astute_xero.operations import actions as operations
from astute_xero.export.chunk_export import ChunkOutcomeUnknown, export_chunk
from astute_xero.export.validation import DocumentValidator
from devtools.astute_data import Line
from tests.astute_xero.conftest import TENANT

D = Decimal


def one_line(amount: str) -> list[Line]:
    return [Line(quantity=D("1"), unit_amount=D(amount))]


def xero_invoice(pipeline, invoice_id: int) -> dict:
    (xero_id,) = pipeline.db.execute(
        "SELECT xero_invoice_id::text FROM xero_sync.invoice_export WHERE invoice_id = %s", (invoice_id,)).fetchone()
    return next(x for x in pipeline.xero.backend.invoices(TENANT) if x["InvoiceID"] == xero_id)


def xero_credit_notes(pipeline) -> dict[int, dict]:
    """Astute credit note id -> Xero's credit note, through the ids we recorded."""
    in_xero = {x["CreditNoteID"]: x for x in pipeline.xero.backend.credit_notes(TENANT)}
    return {cn: in_xero[xero_id] for cn, xero_id in pipeline.db.execute(
        "SELECT credit_note_id, xero_credit_note_id::text FROM xero_sync.credit_note_export "
        "WHERE xero_credit_note_id IS NOT NULL")}


def puts(pipeline, path_end: str) -> int:
    return sum(1 for r in pipeline.xero.backend.requests if r.method == "PUT" and r.path.endswith(path_end))


def test_credit_notes_go_once_as_authorised_accreccredit_and_are_allocated_to_their_invoice(pipeline):
    data = pipeline.data
    customer = data.customer("Harbour Constructions")
    invoice = data.invoice(pipeline.entity, customer, number="INV-1", lines=one_line("100"))
    credit = data.credit_note(pipeline.entity, customer, invoice_id=invoice, number="CN-1", lines=one_line("30"))
    unnumbered = data.credit_note(pipeline.entity, customer, invoice_id=invoice, lines=one_line("20"))
    standalone = data.credit_note(pipeline.entity, customer, number="CN-3", lines=one_line("5"))
    data.flush()

    summary = pipeline.run()

    notes = xero_credit_notes(pipeline)
    assert set(notes) == {credit, unnumbered, standalone}
    assert {x["Type"] for x in notes.values()} == {"ACCRECCREDIT"}
    assert notes[standalone]["Status"] == "AUTHORISED" and notes[standalone]["Allocations"] == []
    assert notes[credit]["Status"] == notes[unnumbered]["Status"] == "PAID", "posted, then used up by the allocation"
    assert notes[credit]["CreditNoteNumber"] == "CN-1"
    # Allocated in full: each credit's total now sits on the invoice, none of it left on the credit notes.
    xero_inv = xero_invoice(pipeline, invoice)
    credited = D(str(notes[credit]["Total"])) + D(str(notes[unnumbered]["Total"]))
    assert D(str(xero_inv["AmountCredited"])) == credited
    assert D(str(xero_inv["AmountDue"])) == D(str(xero_inv["Total"])) - credited
    status = pipeline.credit_note_status()
    assert status[credit] == ("exported", "allocated", D(str(notes[credit]["Total"])))
    assert status[standalone] == ("exported", None, None), "nothing to allocate: it credits no invoice"
    assert puts(pipeline, "/CreditNotes") == 1, "one chunk of credit notes, one call"
    assert puts(pipeline, "/Allocations") == 2
    assert summary.exported == 4 and summary.allocated == 2 and summary.status == "sent"
    (api_log_rows,) = pipeline.db.execute(
        "SELECT count(*) FROM xero_sync.api_log WHERE method = 'PUT' AND endpoint = 'CreditNotes'").fetchone()
    assert api_log_rows == 1

    again = pipeline.run()
    assert (again.exported, again.allocated, again.status) == (0, 0, "nothing_to_send")
    assert puts(pipeline, "/CreditNotes") == 1 and puts(pipeline, "/Allocations") == 2, "nothing sent twice"
    assert len(pipeline.xero.backend.credit_notes(TENANT)) == 3


def test_an_allocation_is_never_more_than_the_invoice_still_owes_or_the_credit_left(pipeline):
    data = pipeline.data
    customer = data.customer("Coastal Labour")
    part_paid = data.invoice(pipeline.entity, customer, number="P-1", lines=one_line("100"))
    small = data.invoice(pipeline.entity, customer, number="S-1", lines=one_line("50"))
    shared = data.invoice(pipeline.entity, customer, number="T-1", lines=one_line("100"))
    data.flush()
    pipeline.run()
    due_before = D(str(xero_invoice(pipeline, part_paid)["AmountDue"]))
    pipeline.xero.backend.record_payment(TENANT, xero_invoice(pipeline, part_paid)["InvoiceID"], due_before - D("10"))

    after_payment = data.credit_note(pipeline.entity, customer, invoice_id=part_paid, number="CN-P", lines=one_line("30"))
    bigger = data.credit_note(pipeline.entity, customer, invoice_id=small, number="CN-S", lines=one_line("80"))
    first = data.credit_note(pipeline.entity, customer, invoice_id=shared, number="CN-T1", lines=one_line("60"))
    second = data.credit_note(pipeline.entity, customer, invoice_id=shared, number="CN-T2", lines=one_line("60"))
    data.flush()
    summary = pipeline.run()

    notes = xero_credit_notes(pipeline)
    status = pipeline.credit_note_status()
    assert status[after_payment][1:] == ("allocated", D("10.00")), "only the 10 still owed"
    assert D(str(notes[after_payment]["RemainingCredit"])) == D(str(notes[after_payment]["Total"])) - D("10")
    small_total = D(str(xero_invoice(pipeline, small)["Total"]))
    assert status[bigger][1:] == ("allocated", small_total), "no more than the invoice's total"
    assert D(str(notes[bigger]["RemainingCredit"])) == D(str(notes[bigger]["Total"])) - small_total
    shared_total = D(str(xero_invoice(pipeline, shared)["Total"]))
    assert status[first][2] + status[second][2] == shared_total, "the second gets only what the first left"
    for invoice in (part_paid, small, shared):
        x = xero_invoice(pipeline, invoice)
        assert D(str(x["AmountDue"])) == 0 and x["Status"] == "PAID"
    assert summary.allocated == 4


def test_a_credit_note_waits_for_its_invoice_with_the_reason_and_goes_with_it(pipeline):
    data = pipeline.data
    customer = data.customer("Ridge Mining")
    refused = data.invoice(pipeline.entity, customer, number="R-1", lines=[Line(quantity=D("1"), unit_amount=D("100"),
                                                                                account_code="999")])
    history = data.invoice(pipeline.entity, customer, number="H-1", invoice_date=dt.date(2025, 12, 1),
                           lines=one_line("100"))  # before go-live and never mock-exported: not in Xero
    waits_for_refused = data.credit_note(pipeline.entity, customer, invoice_id=refused, number="CN-R", lines=one_line("10"))
    waits_for_history = data.credit_note(pipeline.entity, customer, invoice_id=history, number="CN-H", lines=one_line("10"))
    data.flush()

    summary = pipeline.run()
    assert pipeline.status()[refused] == "failed"
    assert pipeline.credit_note_status() == {}, "neither credit note went to Xero"
    assert pipeline.xero.backend.credit_notes(TENANT) == []
    (entity,) = summary.entities
    reasons = {note.label: note.reason for note in entity.waiting}
    assert set(reasons) == {"Credit note CN-R", "Credit note CN-H"}
    assert reasons["Credit note CN-R"].startswith("Waits for invoice R-1, which is not in Xero yet: Xero refused it")
    assert reasons["Credit note CN-H"] == (
        "Waits for invoice H-1, which is not in Xero yet: it has not been exported yet. The credit note goes to Xero "
        "in the run that exports the invoice, and is allocated to it.")
    assert summary.status == "failed", "the refused invoice failed"

    # Finance fixes the invoice in Astute; the next run sends it, then its credit note, and allocates it.
    pipeline.db.execute("UPDATE astute.invoice_line SET account_code = '200' WHERE invoice_id = %s", (refused,))
    second = pipeline.run()
    assert pipeline.status()[refused] == "exported"
    status = pipeline.credit_note_status()
    assert status[waits_for_refused][:2] == ("exported", "allocated")
    assert waits_for_history not in status, "its invoice is still not in Xero"
    assert [note.label for note in second.entities[0].waiting] == ["Credit note CN-H"]


def test_a_lost_answer_for_credit_notes_is_reconciled_not_resent(pipeline):
    data = pipeline.data
    customer = data.customer("Summit Staffing")
    numbered = [data.credit_note(pipeline.entity, customer, number=f"CN-{n}", lines=one_line(str(10 + n)))
                for n in range(3)]
    unnumbered = [data.credit_note(pipeline.entity, customer, credit_date=dt.date(2026, 6, 20), lines=one_line("7"))
                  for _ in range(2)]  # identical: only the count tells them apart
    data.flush()
    (key,) = pipeline.plan()
    assert key.kind == "credit_note"
    pipeline.xero.backend.faults.drop_after_commit_next(1, path_prefix="/api.xro/2.0/CreditNotes")
    with pytest.raises(ChunkOutcomeUnknown):
        export_chunk(pipeline.db, pipeline.client, key)
    assert len(pipeline.xero.backend.credit_notes(TENANT)) == 5, "Xero did create them"

    pipeline.xero.backend.advance(3600)  # long after Xero forgot the Idempotency-Key
    result = export_chunk(pipeline.db, pipeline.client, key)
    assert (result.reconciled, result.exported) == (5, 0)
    assert puts(pipeline, "/CreditNotes") == 1
    recorded = xero_credit_notes(pipeline)
    assert set(recorded) == set(numbered + unnumbered)
    assert len({x["CreditNoteID"] for x in recorded.values()}) == 5, "each its own Xero credit note"


def test_a_lost_allocation_answer_is_read_back_not_allocated_twice(pipeline):
    data = pipeline.data
    customer = data.customer("Valley Farms")
    invoice = data.invoice(pipeline.entity, customer, number="V-1", lines=one_line("100"))
    credit = data.credit_note(pipeline.entity, customer, invoice_id=invoice, number="CN-V", lines=one_line("40"))
    data.flush()
    for key in pipeline.plan():
        export_chunk(pipeline.db, pipeline.client, key)
    pipeline.xero.backend.faults.drop_after_commit_next(1, path_prefix="/api.xro/2.0/CreditNotes", method="PUT")
    with pytest.raises(allocation.AllocationOutcomeUnknown):
        allocation.allocate_run(pipeline.db, pipeline.client, pipeline.run_id)
    assert pipeline.credit_note_status()[credit][1] == "sending"

    pipeline.xero.backend.advance(3600)
    allocation.allocate_run(pipeline.db, pipeline.client, pipeline.run_id)
    (note,) = xero_credit_notes(pipeline).values()
    assert len(note["Allocations"]) == 1, "allocated once"
    assert pipeline.credit_note_status()[credit] == ("exported", "allocated", D(str(note["Total"])))
    assert puts(pipeline, "/Allocations") == 1


def test_allocation_amount_is_the_smaller_of_credit_left_and_amount_due():
    assert allocation.allocation_amount(D("33.00"), D("110.00")) == D("33.00")
    assert allocation.allocation_amount(D("220.00"), D("55.005")) == D("55.00")
    assert allocation.allocation_amount(D("10.00"), D("0.00")) == D("0.00")
    assert allocation.allocation_amount(D("10.00"), D("-5.00")) == D("0.00")


def test_a_credit_note_for_history_is_allocated_to_the_invoice_xero_already_had(pipeline):
    """Go-live: history is mock-exported (it is in Xero already, keyed in before); a later credit note for it
    finds that invoice by its number and is allocated there."""
    data = pipeline.data
    customer = data.customer("Old Town Hotel")
    history = data.invoice(pipeline.entity, customer, number="OLD-7", invoice_date=dt.date(2025, 11, 3),
                           lines=one_line("100"))
    data.flush()
    contact = pipeline.xero.backend.add_contact(TENANT, "Old Town Hotel")
    pipeline.xero.backend.seed_invoice(TENANT, contact_id=contact, invoice_number="OLD-7", amount="100.00")
    operations.mock_export(pipeline.db, billing_entity_id=pipeline.entity, migration_date=None, dag_id="t",
                           airflow_run_id="go-live")
    credit = data.credit_note(pipeline.entity, customer, invoice_id=history, number="CN-OLD", lines=one_line("25"))
    data.flush()

    summary = pipeline.run()
    status = pipeline.credit_note_status()
    assert status[credit][:2] == ("exported", "allocated")
    (seeded,) = [x for x in pipeline.xero.backend.invoices(TENANT) if x["InvoiceNumber"] == "OLD-7"]
    assert D(str(seeded["AmountCredited"])) == status[credit][2] > 0
    assert pipeline.status() == {history: "mock_exported"}, "the invoice itself is never sent"
    assert summary.allocated == 1


def test_validation_holds_a_credit_note_xero_could_never_allocate(pipeline):
    data = pipeline.data
    customer, other = data.customer("Lakeside Cafe"), data.customer("Hilltop Bakery")
    invoice = data.invoice(pipeline.entity, customer, number="L-1", lines=one_line("100"))
    usd_invoice = data.invoice(pipeline.entity, customer, number="L-2", currency="USD", lines=one_line("100"))
    wrong_customer = data.credit_note(pipeline.entity, other, invoice_id=invoice, number="CN-X")
    wrong_currency = data.credit_note(pipeline.entity, customer, invoice_id=usd_invoice, number="CN-Y")
    fine = data.credit_note(pipeline.entity, customer, invoice_id=invoice, number="CN-Z")
    data.flush()
    run_id = pipeline.select()
    run_validation.validate_run(pipeline.db, pipeline.client, run_id, DocumentValidator())
    stages = dict(pipeline.db.execute(
        "SELECT document_id, stage FROM xero_sync.run_document WHERE run_id = %s AND kind = 'credit_note'", (run_id,)))
    assert stages == {wrong_customer: "held", wrong_currency: "held", fine: "ready"}
    messages = dict(pipeline.db.execute(
        "SELECT document_id, message FROM xero_sync.validation_issue WHERE kind = 'credit_note'"))
    assert "credits invoice L-1, which belongs to another customer" in messages[wrong_customer]
    assert "credits invoice L-2, which is in USD" in messages[wrong_currency]


def test_credit_notes_go_in_their_own_chunks_of_at_most_100_after_the_invoices(pipeline):
    data = pipeline.data
    customer = data.customer("Pioneer Rail")
    invoice = data.invoice(pipeline.entity, customer, number="PR-1", lines=one_line("10000"))
    credit_notes = [data.credit_note(pipeline.entity, customer, invoice_id=invoice if n < 3 else None,
                                     number=f"PR-CN-{n}", lines=one_line("1")) for n in range(130)]
    data.flush()
    keys = pipeline.plan()
    assert [(k.kind, k.chunk_no, k.chunk_count) for k in keys] == [
        ("invoice", 1, 3), ("credit_note", 2, 3), ("credit_note", 3, 3)]
    sizes = [row[0] for row in pipeline.db.execute(
        "SELECT document_count FROM xero_sync.export_chunk WHERE run_id = %s ORDER BY chunk_no", (pipeline.run_id,))]
    assert sizes == [1, 100, 30]
    for key in keys:
        export_chunk(pipeline.db, pipeline.client, key)
    allocation.allocate_run(pipeline.db, pipeline.client, pipeline.run_id)

    assert puts(pipeline, "/CreditNotes") == 2
    logged = pipeline.db.execute(
        "SELECT chunk_no, item_count FROM xero_sync.api_log WHERE method = 'PUT' AND endpoint = 'CreditNotes' "
        "ORDER BY chunk_no").fetchall()
    assert logged == [(2, 100), (3, 30)], "one call and one api_log row per chunk"
    notes = xero_credit_notes(pipeline)
    assert set(notes) == set(credit_notes)
    assert {x["CurrencyCode"] for x in notes.values()} == {"AUD"}, "no currency in Astute: the region's default"
    assert puts(pipeline, "/Allocations") == 3


def test_a_history_invoice_is_found_by_number_among_sales_invoices_only(pipeline):
    """Finding 4 of issue 9, on the allocation side: `InvoiceNumbers=` also returns supplier bills."""
    data = pipeline.data
    customer = data.customer("Old Town Hotel")
    history = data.invoice(pipeline.entity, customer, number="OLD-8", invoice_date=dt.date(2025, 11, 3),
                           lines=one_line("100"))
    data.flush()
    backend = pipeline.xero.backend
    contact = backend.add_contact(TENANT, "Old Town Hotel")
    seeded = backend.seed_invoice(TENANT, contact_id=contact, invoice_number="OLD-8", amount="100.00")
    backend.seed_bill(TENANT, backend.add_contact(TENANT, "Linen Supplies"), "OLD-8")  # a supplier numbers alike
    operations.mock_export(pipeline.db, billing_entity_id=pipeline.entity, migration_date=None, dag_id="t",
                           airflow_run_id="go-live")
    credit = data.credit_note(pipeline.entity, customer, invoice_id=history, number="CN-OLD8", lines=one_line("25"))
    data.flush()

    pipeline.run()
    assert pipeline.credit_note_status()[credit][:2] == ("exported", "allocated")
    (invoice,) = [x for x in backend.invoices(TENANT) if x["InvoiceID"] == seeded]
    assert D(str(invoice["AmountCredited"])) > 0


def test_a_credit_note_reset_after_it_went_from_xero_is_allocated_again(pipeline):
    """Reset forgets the Xero credit note that went: its allocation went with it, so the re-created one is
    allocated again, and xero_sync never says 'allocated' for a credit note whose credit Xero still holds."""
    from astute_xero.readback.status_sync import sync_organisation

    data = pipeline.data
    customer = data.customer("Harbour Constructions")
    invoice = data.invoice(pipeline.entity, customer, number="INV-9", lines=one_line("100"))
    credit = data.credit_note(pipeline.entity, customer, invoice_id=invoice, number="CN-9", lines=one_line("30"))
    data.flush()
    pipeline.run()
    first = xero_credit_notes(pipeline)[credit]
    assert pipeline.credit_note_status()[credit] == ("exported", "allocated", D("33.00"))

    # The organisation is restored from a backup taken before the credit note was created.
    pipeline.xero.backend.forget_document(TENANT, "credit_note", first["CreditNoteID"])
    sync_organisation(pipeline.db, pipeline.client, TENANT, full=True)
    result = operations.reset_for_export(pipeline.db, credit_note_ids=[credit])
    assert result.refused == [] and len(result.reset) == 1

    pipeline.run()
    again = xero_credit_notes(pipeline)[credit]
    assert again["CreditNoteID"] != first["CreditNoteID"]
    assert again["RemainingCredit"] == 0 and len(again["Allocations"]) == 1, "its credit is on the invoice again"
    assert D(str(xero_invoice(pipeline, invoice)["AmountDue"])) == D("77.00")  # 110 with tax, less 33
    assert pipeline.credit_note_status()[credit] == ("exported", "allocated", D("33.00"))
    (allocation_id,) = pipeline.db.execute(
        "SELECT xero_allocation_id::text FROM xero_sync.credit_note_export WHERE credit_note_id = %s", (credit,)
    ).fetchone()
    assert allocation_id == again["Allocations"][0]["AllocationID"]


def test_a_paid_credit_note_is_read_back_with_the_date_xero_says_it_was_fully_paid(pipeline):
    """Xero returns FullyPaidOnDate on a credit note whose credit is used up (PAID); the read back keeps it, as
    it does an invoice's, for the report's 'fully paid on'."""
    from astute_xero.readback.status_sync import sync_organisation

    data = pipeline.data
    customer = data.customer("Harbour Constructions")
    invoice = data.invoice(pipeline.entity, customer, number="INV-P", lines=one_line("100"))
    credits = [data.credit_note(pipeline.entity, customer, invoice_id=invoice, number=f"CN-P{n}", lines=one_line("10"))
               for n in range(3)]
    open_credit = data.credit_note(pipeline.entity, customer, number="CN-OPEN", lines=one_line("5"))
    data.flush()
    pipeline.run()
    sync_organisation(pipeline.db, pipeline.client, TENANT, full=True)

    notes = xero_credit_notes(pipeline)
    read_back = dict(pipeline.db.execute(
        "SELECT xero_id::text, fully_paid_on FROM xero_sync.xero_document WHERE kind = 'credit_note'").fetchall())
    for credit in credits:
        assert notes[credit]["Status"] == "PAID"
        expected = dt.datetime.fromtimestamp(
            int(notes[credit]["FullyPaidOnDate"].split("(")[1].split("+")[0]) / 1000, dt.timezone.utc).date()
        assert read_back[notes[credit]["CreditNoteID"]] == expected
    assert notes[open_credit]["Status"] == "AUTHORISED"
    assert read_back[notes[open_credit]["CreditNoteID"]] is None
