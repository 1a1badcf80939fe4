"""Reading back what happened in Xero after an export: what a person does in the web app
(payments, allocations, voids, deletions, edits, merged contacts, a document Xero no longer
holds) through the backend's helpers, and the reads the pipeline makes to see it
(If-Modified-Since, paging, createdByMyApp, Statuses, summaryOnly, order; GET /Payments)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
import urllib3
from xero_python.accounting import Contact, CreditNote, CreditNotes, Invoice, Invoices, LineItem
from xero_python.exceptions import HTTPStatusException

from .sandbox_helpers import Xero, raw_call

D = Decimal
DAY = dt.date(2026, 7, 1)
OTHER_APP, OTHER_SECRET = "other-app", "other-secret-not-real"


# ---------------------------------------------------------------- helpers
def _lines(amount: str, account: str = "200") -> list[LineItem]:
    return [LineItem(description="Work", quantity=D("1"), unit_amount=D(amount), account_code=account)]


def _create_invoices(xero: Xero, contact_id: str, *specs: tuple[str | None, str, str]) -> list[str]:
    """PUT /Invoices as the connected app: (number, amount ex GST, status) each; 10% GST on account 200."""
    invoices = [Invoice(type="ACCREC", contact=Contact(contact_id=contact_id), invoice_number=number, status=status,
                        date=DAY, due_date=DAY + dt.timedelta(days=30), line_items=_lines(amount))
                for number, amount, status in specs]
    result = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=invoices), summarize_errors=False)
    assert [i.status_attribute_string for i in result.invoices] == ["OK"] * len(specs)
    return [i.invoice_id for i in result.invoices]


def _create_credit_note(xero: Xero, contact_id: str, amount: str, status: str = "AUTHORISED") -> str:
    note = CreditNote(type="ACCRECCREDIT", contact=Contact(contact_id=contact_id), status=status, date=DAY,
                      line_items=_lines(amount))
    result = xero.accounting.create_credit_notes(xero.tenant_id, CreditNotes(credit_notes=[note]),
                                                 summarize_errors=False)
    assert result.credit_notes[0].status_attribute_string == "OK"
    return result.credit_notes[0].credit_note_id


def _invoice(xero: Xero, invoice_id: str) -> Invoice:
    return xero.accounting.get_invoice(xero.tenant_id, invoice_id).invoices[0]


def _credit_note(xero: Xero, credit_note_id: str) -> CreditNote:
    return xero.accounting.get_credit_note(xero.tenant_id, credit_note_id).credit_notes[0]


def _now(xero: Xero) -> dt.datetime:
    return dt.datetime.fromtimestamp(xero.backend.clock(), dt.timezone.utc)


def _ms(value: str) -> int:
    """The milliseconds of a wire date, /Date(1782864000000+0000)/."""
    return int(value[len("/Date("):].split("+")[0].split(")")[0])


def _get(xero: Xero, path: str, since: str | None = None, token: str | None = None) -> tuple[int, Any]:
    headers = {}
    if since is not None:
        headers["If-Modified-Since"] = since
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    return raw_call(xero, "GET", path, headers=headers)


@pytest.fixture
def customer(xero: Xero) -> str:
    return xero.backend.add_contact(xero.tenant_id, "Readback Customer")


# ---------------------------------------------------------------- payments
def test_payments_pay_off_an_invoice_as_xero_records_them(xero: Xero, customer: str) -> None:
    t, backend = xero.tenant_id, xero.backend
    (invoice_id,) = _create_invoices(xero, customer, ("RB-1", "100", "AUTHORISED"))  # 110.00 due
    backend.advance(5)
    first = backend.record_payment(t, invoice_id, "50", dt.date(2026, 7, 10), reference="EFT 1")
    invoice = _invoice(xero, invoice_id)
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == ("AUTHORISED", D("50.00"), D("60.00"))
    assert invoice.fully_paid_on_date is None
    assert [(p.payment_id, p.amount, p.reference) for p in invoice.payments] == [(first, D("50.00"), "EFT 1")]

    backend.advance(5)
    second = backend.record_payment(t, invoice_id, "60.00", dt.date(2026, 7, 20))
    invoice = _invoice(xero, invoice_id)
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == ("PAID", D("110.00"), D("0.00"))
    assert invoice.fully_paid_on_date == dt.date(2026, 7, 20)
    assert [p.payment_id for p in invoice.payments] == [first, second]

    payments = xero.accounting.get_payments(t).payments
    assert [(p.payment_id, p.amount, p.status, p.is_reconciled, p.payment_type) for p in payments] == [
        (first, D("50.00"), "AUTHORISED", False, "ACCRECPAYMENT"),
        (second, D("60.00"), "AUTHORISED", False, "ACCRECPAYMENT")]
    assert payments[0].date == dt.date(2026, 7, 10) and payments[0].updated_date_utc is not None
    assert payments[1].invoice.invoice_id == invoice_id and payments[1].invoice.invoice_number == "RB-1"
    assert payments[1].invoice.status == "PAID" and payments[1].account.code == "090"
    assert xero.accounting.get_payment(t, second).payments[0].amount == D("60.00")


def test_payments_xero_would_refuse_are_refused(xero: Xero, customer: str) -> None:
    t, backend = xero.tenant_id, xero.backend
    authorised, draft = _create_invoices(xero, customer, ("RB-2", "100", "AUTHORISED"), ("RB-3", "100", "DRAFT"))
    with pytest.raises(ValueError, match="^Payment amount exceeds the amount outstanding on this document$"):
        backend.record_payment(t, authorised, "110.01")
    with pytest.raises(ValueError, match="^Payments can only be made against Authorised documents$"):
        backend.record_payment(t, draft, "10")
    with pytest.raises(ValueError, match="^Payment amounts must be positive amounts$"):
        backend.record_payment(t, authorised, "0")
    with pytest.raises(ValueError, match="not an active bank account"):
        backend.record_payment(t, authorised, "10", account_code="200")
    with pytest.raises(KeyError):
        backend.record_payment(t, "00000000-0000-0000-0000-000000000001", "10")
    backend.record_payment(t, authorised, "110")
    with pytest.raises(ValueError, match="^Payments can only be made against Authorised documents$"):
        backend.record_payment(t, authorised, "1")  # PAID now
    assert [p.amount for p in xero.accounting.get_payments(t).payments] == [D("110.00")]


def test_deleting_a_payment_makes_the_invoice_owed_again(xero: Xero, customer: str) -> None:
    t, backend = xero.tenant_id, xero.backend
    (invoice_id,) = _create_invoices(xero, customer, ("RB-4", "100", "AUTHORISED"))
    payment_id = backend.record_payment(t, invoice_id, "110")
    paid = _invoice(xero, invoice_id)
    assert paid.status == "PAID" and paid.fully_paid_on_date is not None
    backend.advance(10)
    backend.delete_payment(t, payment_id)
    invoice = _invoice(xero, invoice_id)
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == ("AUTHORISED", D("0.00"), D("110.00"))
    assert invoice.fully_paid_on_date is None and invoice.payments == []
    assert invoice.updated_date_utc > paid.updated_date_utc
    deleted = xero.accounting.get_payment(t, payment_id).payments[0]
    assert deleted.status == "DELETED" and deleted.invoice.amount_due == D("110.00")
    with pytest.raises(ValueError, match="^Payment not of valid status for modification$"):
        backend.delete_payment(t, payment_id)
    with pytest.raises(KeyError):
        backend.delete_payment(t, "00000000-0000-0000-0000-000000000002")


# ---------------------------------------------------------------- allocations
def test_allocating_a_credit_note_by_hand(xero: Xero, customer: str) -> None:
    t, backend = xero.tenant_id, xero.backend
    (invoice_id,) = _create_invoices(xero, customer, ("RB-5", "100", "AUTHORISED"))  # 110.00
    note_id = _create_credit_note(xero, customer, "20")  # 22.00
    stranger = backend.add_contact(t, "Someone Else")
    other_note = _create_credit_note(xero, stranger, "20")
    with pytest.raises(ValueError, match="exceeds the remaining credit \\(22.00\\) on the credit note"):
        backend.allocate_credit_note(t, note_id, invoice_id, "30")
    with pytest.raises(ValueError, match="must belong to the same contact"):
        backend.allocate_credit_note(t, other_note, invoice_id, "1")
    before = _invoice(xero, invoice_id).updated_date_utc
    backend.advance(3)
    allocation_id = backend.allocate_credit_note(t, note_id, invoice_id, "22", dt.date(2026, 7, 5))
    invoice = _invoice(xero, invoice_id)
    assert (invoice.amount_credited, invoice.amount_due, invoice.status) == (D("22.00"), D("88.00"), "AUTHORISED")
    assert [(c.credit_note_id, c.applied_amount) for c in invoice.credit_notes] == [(note_id, D("22.00"))]
    assert invoice.updated_date_utc > before
    note = _credit_note(xero, note_id)
    assert (note.remaining_credit, note.status, note.fully_paid_on_date) == (D("0.00"), "PAID", dt.date(2026, 7, 5))
    assert [a.allocation_id for a in note.allocations] == [allocation_id]


# ---------------------------------------------------------------- voids, deletions, edits
def test_voiding_needs_an_authorised_document_with_nothing_applied(xero: Xero, customer: str) -> None:
    t, backend = xero.tenant_id, xero.backend
    paid_part, plain, draft = _create_invoices(xero, customer, ("RB-6", "100", "AUTHORISED"),
                                               ("RB-7", "100", "AUTHORISED"), ("RB-8", "100", "DRAFT"))
    payment_id = backend.record_payment(t, paid_part, "10")
    with pytest.raises(ValueError, match="^This document cannot be edited as it has a payment or credit note "
                                         "allocated to it.$"):
        backend.void_document(t, "invoice", paid_part)
    assert _invoice(xero, paid_part).status == "AUTHORISED"
    with pytest.raises(ValueError, match="^Invoice not of valid status for modification$"):
        backend.void_document(t, "invoice", draft)

    backend.advance(2)
    backend.void_document(t, "invoice", plain)
    voided = _invoice(xero, plain)
    assert (voided.status, voided.amount_due, voided.total) == ("VOIDED", D("0.00"), D("110.00"))
    with pytest.raises(ValueError, match="not of valid status"):
        backend.void_document(t, "invoice", plain)
    backend.delete_payment(t, payment_id)  # with the payment removed, Xero lets it be voided
    backend.void_document(t, "invoice", paid_part)
    assert _invoice(xero, paid_part).status == "VOIDED"

    note_id = _create_credit_note(xero, customer, "10")
    (target,) = _create_invoices(xero, customer, ("RB-9", "100", "AUTHORISED"))
    backend.allocate_credit_note(t, note_id, target, "5")
    with pytest.raises(ValueError, match="payment or credit note allocated"):
        backend.void_document(t, "credit_note", note_id)
    with pytest.raises(ValueError, match="payment or credit note allocated"):
        backend.void_document(t, "invoice", target)
    lone_note = _create_credit_note(xero, customer, "10")
    backend.void_document(t, "credit_note", lone_note)
    voided_note = _credit_note(xero, lone_note)
    assert (voided_note.status, voided_note.remaining_credit) == ("VOIDED", D("0.00"))


def test_only_drafts_and_submitted_documents_can_be_deleted(xero: Xero, customer: str) -> None:
    t, backend = xero.tenant_id, xero.backend
    draft, submitted, authorised = _create_invoices(xero, customer, ("RB-10", "100", "DRAFT"),
                                                    ("RB-11", "100", "SUBMITTED"), ("RB-12", "100", "AUTHORISED"))
    with pytest.raises(ValueError, match="^Invoice not of valid status for modification$"):
        backend.delete_document(t, "invoice", authorised)
    backend.delete_document(t, "invoice", draft)
    backend.delete_document(t, "invoice", submitted)
    with pytest.raises(ValueError):
        backend.delete_document(t, "invoice", draft)  # already deleted
    # Deleted documents are still served, by ID and in lists, with their status.
    assert _invoice(xero, draft).status == "DELETED"
    listed = {i.invoice_number: i.status for i in xero.accounting.get_invoices(t).invoices}
    assert listed == {"RB-10": "DELETED", "RB-11": "DELETED", "RB-12": "AUTHORISED"}
    draft_note = _create_credit_note(xero, customer, "5", status="DRAFT")
    backend.delete_document(t, "credit_note", draft_note)
    assert _credit_note(xero, draft_note).status == "DELETED"
    with pytest.raises(ValueError, match="kind must be"):
        backend.delete_document(t, "bill", draft)


def test_editing_an_authorised_invoices_lines_recomputes_it(xero: Xero, customer: str) -> None:
    t, backend = xero.tenant_id, xero.backend
    (invoice_id,) = _create_invoices(xero, customer, ("RB-13", "100", "AUTHORISED"))
    before = _invoice(xero, invoice_id)
    line_id = before.line_items[0].line_item_id
    backend.advance(4)
    backend.edit_document_lines(t, "invoice", invoice_id, [
        {"LineItemID": line_id, "Description": "Work, revised", "Quantity": 3, "UnitAmount": D("50"),
         "AccountCode": "200"},
        {"Description": "Interest", "Quantity": 1, "UnitAmount": D("7.5"), "AccountCode": "270"}])
    after = _invoice(xero, invoice_id)
    assert (after.sub_total, after.total_tax, after.total, after.amount_due) == (
        D("157.50"), D("15.00"), D("172.50"), D("172.50"))
    assert after.line_items[0].line_item_id == line_id and len(after.line_items) == 2
    assert after.status == "AUTHORISED" and after.updated_date_utc > before.updated_date_utc

    with pytest.raises(ValueError, match="Account code '999' is not a valid code"):
        backend.edit_document_lines(t, "invoice", invoice_id, [{"Quantity": 1, "UnitAmount": 1, "AccountCode": "999"}])
    backend.record_payment(t, invoice_id, "10")
    with pytest.raises(ValueError, match="^This document cannot be edited as it has a payment or credit note "
                                         "allocated to it.$"):
        backend.edit_document_lines(t, "invoice", invoice_id, [{"Quantity": 1, "UnitAmount": 1, "AccountCode": "200"}])
    assert _invoice(xero, invoice_id).total == D("172.50")


# ---------------------------------------------------------------- merged contacts
def test_merging_contacts_moves_documents_and_archives_the_merged_one(xero: Xero) -> None:
    t, backend = xero.tenant_id, xero.backend
    duplicate = backend.add_contact(t, "Acme Pty Ltd (old)")
    survivor = backend.add_contact(t, "Acme Pty Ltd")
    moved = _create_invoices(xero, duplicate, ("RB-20", "100", "AUTHORISED"), ("RB-21", "50", "DRAFT"))
    moved_note = _create_credit_note(xero, duplicate, "10")
    (untouched,) = _create_invoices(xero, survivor, ("RB-22", "10", "AUTHORISED"))
    backend.advance(5)
    mark = _now(xero)
    backend.advance(5)
    assert sorted(backend.merge_contacts(t, duplicate, survivor)) == sorted([*moved, moved_note])

    for invoice_id in moved:
        invoice = _invoice(xero, invoice_id)
        assert (invoice.contact.contact_id, invoice.contact.name) == (survivor, "Acme Pty Ltd")
    assert _credit_note(xero, moved_note).contact.contact_id == survivor
    changed = xero.accounting.get_invoices(t, if_modified_since=mark).invoices
    assert sorted(i.invoice_id for i in changed) == sorted(moved)  # RB-22 did not change
    assert [c.credit_note_id for c in xero.accounting.get_credit_notes(t, if_modified_since=mark).credit_notes] == [
        moved_note]
    merged = xero.accounting.get_contact(t, duplicate).contacts[0]
    assert (merged.contact_status, str(merged.merged_to_contact_id)) == ("ARCHIVED", survivor)
    assert duplicate in {c.contact_id for c in xero.accounting.get_contacts(t, if_modified_since=mark,
                                                                             include_archived=True).contacts}
    assert untouched in {i.invoice_id for i in xero.accounting.get_invoices(t, contact_i_ds=[survivor]).invoices}
    with pytest.raises(ValueError, match="Only ACTIVE contacts"):
        backend.merge_contacts(t, duplicate, survivor)  # archived now
    with pytest.raises(ValueError, match="into itself"):
        backend.merge_contacts(t, survivor, survivor)


# ---------------------------------------------------------------- documents Xero no longer holds
def test_a_document_xero_no_longer_holds_is_gone_from_every_read(xero: Xero, customer: str) -> None:
    t, backend = xero.tenant_id, xero.backend
    kept, lost = _create_invoices(xero, customer, ("RB-30", "100", "AUTHORISED"), ("RB-31", "100", "AUTHORISED"))
    note_id = _create_credit_note(xero, customer, "20")
    backend.allocate_credit_note(t, note_id, lost, "22")
    backend.record_payment(t, lost, "10")
    backend.forget_document(t, "invoice", lost)

    with pytest.raises(HTTPStatusException) as missing:
        xero.accounting.get_invoice(t, lost)
    assert missing.value.status == 404
    assert [i.invoice_id for i in xero.accounting.get_invoices(t).invoices] == [kept]
    assert xero.accounting.get_invoices(t, i_ds=[lost]).invoices == []
    assert xero.accounting.get_payments(t).payments == []
    note = _credit_note(xero, note_id)
    assert (note.remaining_credit, note.allocations) == (D("22.00"), [])
    # Its number is free again: the organisation holds no RB-31.
    assert _create_invoices(xero, customer, ("RB-31", "1", "DRAFT"))
    with pytest.raises(KeyError):
        backend.forget_document(t, "invoice", lost)


# ---------------------------------------------------------------- If-Modified-Since
def test_if_modified_since_returns_only_what_changed(xero: Xero, customer: str) -> None:
    t, backend = xero.tenant_id, xero.backend
    quiet, paid, voided, draft = _create_invoices(
        xero, customer, ("RB-40", "100", "AUTHORISED"), ("RB-41", "100", "AUTHORISED"),
        ("RB-42", "100", "AUTHORISED"), ("RB-43", "100", "DRAFT"))
    backend.advance(60)
    mark = _now(xero)
    assert xero.accounting.get_invoices(t, if_modified_since=mark).invoices == []

    backend.advance(60)
    payment_id = backend.record_payment(t, paid, "20")  # a payment changes the invoice's UpdatedDateUTC
    backend.void_document(t, "invoice", voided)
    backend.delete_document(t, "invoice", draft)
    changed = xero.accounting.get_invoices(t, if_modified_since=mark).invoices
    assert {i.invoice_number: i.status for i in changed} == {"RB-41": "AUTHORISED", "RB-42": "VOIDED",
                                                             "RB-43": "DELETED"}
    assert quiet not in {i.invoice_id for i in changed}
    assert next(i for i in changed if i.invoice_id == paid).amount_due == D("90.00")
    assert [p.payment_id for p in xero.accounting.get_payments(t, if_modified_since=mark).payments] == [payment_id]

    # The same instant as an HTTP date, and as ISO with Z, answers the same.
    backend.advance(1)  # the answers below are dated after every change above
    http_date = mark.strftime("%a, %d %b %Y %H:%M:%S GMT")
    status, body = _get(xero, "/api.xro/2.0/Invoices", since=http_date)
    assert status == 200 and sorted(i["InvoiceNumber"] for i in body["Invoices"]) == ["RB-41", "RB-42", "RB-43"]
    status, body = _get(xero, "/api.xro/2.0/Invoices", since=mark.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert sorted(i["InvoiceNumber"] for i in body["Invoices"]) == ["RB-41", "RB-42", "RB-43"]

    # A second read from the last answer's DateTimeUTC, with nothing changed since, returns nothing.
    second_mark = body["DateTimeUTC"]
    since = dt.datetime.fromtimestamp(_ms(second_mark) / 1000, dt.timezone.utc)
    assert xero.accounting.get_invoices(t, if_modified_since=since).invoices == []
    assert xero.accounting.get_payments(t, if_modified_since=since).payments == []
    assert xero.accounting.get_credit_notes(t, if_modified_since=since).credit_notes == []


def test_if_modified_since_is_a_utc_timestamp_inclusive_to_the_second(xero: Xero, customer: str) -> None:
    """Xero documents If-Modified-Since as "a UTC timestamp (yyyy-mm-ddThh:mm:ss)", "accurate to the second"."""
    (invoice_id,) = _create_invoices(xero, customer, ("RB-50", "100", "AUTHORISED"))
    status, body = _get(xero, f"/api.xro/2.0/Invoices/{invoice_id}")
    updated = dt.datetime.fromtimestamp(_ms(body["Invoices"][0]["UpdatedDateUTC"]) / 1000, dt.timezone.utc)
    its_second = updated.replace(microsecond=0)

    def since(header: str) -> list[str]:
        return [i["InvoiceID"] for i in _get(xero, "/api.xro/2.0/Invoices", since=header)[1]["Invoices"]]

    assert since(its_second.strftime("%Y-%m-%dT%H:%M:%S")) == [invoice_id]
    assert since((its_second + dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")) == []
    # A fraction is below Xero's precision: the same second, whatever the fraction says.
    assert since(its_second.strftime("%Y-%m-%dT%H:%M:%S") + ".999") == [invoice_id]
    # An HTTP date (always GMT) is read as it says.
    assert since(its_second.strftime("%a, %d %b %Y %H:%M:%S GMT")) == [invoice_id]
    # An unreadable header is ignored, as before: everything comes back.
    assert since("not a date") == [invoice_id]


def test_if_modified_since_with_an_offset_is_read_as_utc_as_xero_documents_it(xero: Xero, customer: str) -> None:
    """The timestamp is UTC by Xero's definition: an offset is not applied, so a local time (what isoformat()
    of a timestamptz read in a Sydney session gives, 2026-12-06T21:58:12.472595+11:00) is read eleven hours
    late, and what changed in between is not returned. Sent as Xero documents it, it is found."""
    from astute_xero.xero.client import xero_utc_timestamp
    from zoneinfo import ZoneInfo

    t = xero.tenant_id
    before = _now(xero) - dt.timedelta(minutes=10)
    (invoice_id,) = _create_invoices(xero, customer, ("RB-51", "100", "AUTHORISED"))
    sydney = before.astimezone(ZoneInfo("Australia/Sydney"))
    assert sydney.isoformat()[-6:] in ("+10:00", "+11:00") and sydney.microsecond

    status, body = _get(xero, "/api.xro/2.0/Invoices", since=sydney.isoformat())
    assert status == 200 and body["Invoices"] == [], "the local time is read as UTC: hours after the change"
    assert xero.accounting.get_invoices(t, if_modified_since=sydney).invoices == [], "xero-python sends isoformat()"
    # The same instant in Xero's documented form, through xero-python: found.
    documented = xero_utc_timestamp(sydney)
    assert documented.isoformat() == before.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    assert [i.invoice_id for i in xero.accounting.get_invoices(t, if_modified_since=documented).invoices] == [
        invoice_id]
    # UTC written with an offset of zero, or Z, is the same instant either way.
    assert [i["InvoiceID"] for i in _get(xero, "/api.xro/2.0/Invoices",
                                         since=before.isoformat())[1]["Invoices"]] == [invoice_id]


def test_xero_utc_timestamp_floors_to_the_second_and_refuses_a_naive_time() -> None:
    from astute_xero.xero.client import xero_utc_timestamp
    from zoneinfo import ZoneInfo

    moment = dt.datetime(2026, 12, 6, 21, 58, 12, 999999, tzinfo=ZoneInfo("Australia/Sydney"))
    assert xero_utc_timestamp(moment) == dt.datetime(2026, 12, 6, 10, 58, 12)
    assert xero_utc_timestamp(moment).isoformat() == "2026-12-06T10:58:12"
    with pytest.raises(ValueError, match="naive"):
        xero_utc_timestamp(dt.datetime(2026, 12, 6, 21, 58, 12))


# ---------------------------------------------------------------- paging
def test_paging_2500_invoices_by_1000(xero: Xero, customer: str) -> None:
    t, backend = xero.tenant_id, xero.backend
    seeded = {backend.seed_invoice(t, customer, f"PG-{n:04d}", amount="10", date=DAY) for n in range(2500)}
    assert backend.document_count(t) == 2500
    pages = [xero.accounting.get_invoices(t, page=page, page_size=1000) for page in (1, 2, 3, 4)]
    assert [len(p.invoices) for p in pages] == [1000, 1000, 500, 0]
    for number, page in enumerate(pages, start=1):
        pagination = page.pagination
        assert (pagination.page, pagination.page_size, pagination.page_count, pagination.item_count) == (
            number, 1000, 3, 2500)
    got = [i.invoice_id for p in pages for i in p.invoices]
    assert len(got) == len(set(got)) == 2500 and set(got) == seeded

    # Xero caps pageSize at 1000; the default is 100; no page, no pagination (the whole list).
    status, capped = _get(xero, "/api.xro/2.0/Invoices?page=1&pageSize=5000&summaryOnly=true")
    assert status == 200 and len(capped["Invoices"]) == 1000
    assert capped["pagination"] == {"page": 1, "pageSize": 1000, "pageCount": 3, "itemCount": 2500}
    status, default = _get(xero, "/api.xro/2.0/Invoices?page=25&summaryOnly=true")
    assert len(default["Invoices"]) == 100 and default["pagination"]["pageCount"] == 25
    status, whole = _get(xero, "/api.xro/2.0/Invoices?summaryOnly=true")
    assert len(whole["Invoices"]) == 2500 and "pagination" not in whole


def test_a_document_changed_between_two_pages_moves_to_the_end_and_shifts_the_rest_back(xero: Xero,
                                                                                       customer: str) -> None:
    """Issue 20: pages ordered by UpdatedDateUTC are computed afresh each request, as Xero does. A person paying
    an invoice of page 1 between our page 1 and page 2 (the between_requests switch) moves it to the end; every
    later invoice shifts back one place, so the one that was first on page 2 is on no page read."""
    t, backend = xero.tenant_id, xero.backend
    ids = []
    for n in range(1100):
        ids.append(backend.seed_invoice(t, customer, f"MV-{n:04d}", amount="10", date=DAY))
        backend.advance(0.01)
    backend.faults.between_requests(lambda: (backend.advance(1), backend.record_payment(t, ids[3], "1.00", DAY)))
    pages = [xero.accounting.get_invoices(t, page=page, page_size=1000, order="UpdatedDateUTC ASC")
             for page in (1, 2)]
    assert backend.faults.injected["between_requests"] == 1
    got = [str(i.invoice_id) for p in pages for i in p.invoices]
    assert got[:1000] == ids[:1000]
    assert got[1000:] == ids[1001:] + [ids[3]], "the moved one last, the 1,001st on no page"
    assert ids[1000] not in got


def test_payments_page_and_filter(xero: Xero, customer: str) -> None:
    t, backend = xero.tenant_id, xero.backend
    ids = [backend.seed_invoice(t, customer, f"PP-{n}", amount="100", date=DAY) for n in range(5)]
    payments = [backend.record_payment(t, invoice_id, "10") for invoice_id in ids]
    backend.advance(1)
    backend.delete_payment(t, payments[1])
    first = xero.accounting.get_payments(t, page=1, page_size=2)
    assert len(first.payments) == 2
    assert (first.pagination.page_count, first.pagination.item_count) == (3, 5)
    deleted = xero.accounting.get_payments(t, where='Status=="DELETED"').payments
    assert [p.payment_id for p in deleted] == [payments[1]]
    by_invoice = xero.accounting.get_payments(t, where=f'Invoice.InvoiceID==guid("{ids[3]}")').payments
    assert [p.payment_id for p in by_invoice] == [payments[3]]
    newest_first = xero.accounting.get_payments(t, order="UpdatedDateUTC DESC").payments
    assert newest_first[0].payment_id == payments[1]  # its deletion is the latest change


# ---------------------------------------------------------------- createdByMyApp
def _other_app_token(xero: Xero) -> str:
    """A second app, connected to the same organisation, with its own access token."""
    xero.backend.register_app(OTHER_APP, OTHER_SECRET)
    first = xero.backend.authorise(OTHER_APP, [xero.tenant_id])
    response = urllib3.PoolManager(retries=False).request(
        "POST", xero.sandbox.url + "/connect/token", encode_multipart=False, fields={
            "grant_type": "refresh_token", "refresh_token": first, "client_id": OTHER_APP,
            "client_secret": OTHER_SECRET})
    assert response.status == 200
    return json.loads(response.data)["access_token"]


def test_created_by_my_app_leaves_out_hand_keyed_and_other_apps_documents(xero: Xero, customer: str) -> None:
    t, backend = xero.tenant_id, xero.backend
    mine = _create_invoices(xero, customer, ("MY-1", "10", "AUTHORISED"), ("MY-2", "10", "DRAFT"))
    by_hand = backend.seed_invoice(t, customer, "HAND-1", amount="10", date=DAY)
    other = _other_app_token(xero)
    status, body = raw_call(xero, "PUT", "/api.xro/2.0/Invoices?summarizeErrors=false", {"Invoices": [{
        "Type": "ACCREC", "Contact": {"ContactID": customer}, "InvoiceNumber": "OTHER-1", "Status": "AUTHORISED",
        "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200"}]}]},
        headers={"Authorization": "Bearer " + other})
    assert status == 200 and body["Invoices"][0]["StatusAttributeString"] == "OK"
    theirs = body["Invoices"][0]["InvoiceID"]

    assert sorted(i.invoice_id for i in xero.accounting.get_invoices(t, created_by_my_app=True).invoices) == (
        sorted(mine))
    everything = {i.invoice_id for i in xero.accounting.get_invoices(t, created_by_my_app=False).invoices}
    assert everything == {*mine, by_hand, theirs}
    status, body = _get(xero, "/api.xro/2.0/Invoices?createdByMyApp=true", token=other)
    assert [i["InvoiceID"] for i in body["Invoices"]] == [theirs]
    # A Custom Connection to the same organisation is another client id: it created none of them, and
    # without createdByMyApp it reads them all.
    backend.identity.register_app("custom-conn", "custom-conn-secret", custom_tenant_id=t)
    response = urllib3.PoolManager(retries=False).request(
        "POST", xero.sandbox.url + "/connect/token", encode_multipart=False, fields={
            "grant_type": "client_credentials", "client_id": "custom-conn", "client_secret": "custom-conn-secret"})
    assert response.status == 200
    custom = json.loads(response.data)["access_token"]
    status, body = _get(xero, "/api.xro/2.0/Invoices?createdByMyApp=true", token=custom)
    assert status == 200 and body["Invoices"] == []
    status, body = _get(xero, "/api.xro/2.0/Invoices", token=custom)
    assert {i["InvoiceID"] for i in body["Invoices"]} == everything

    # An update by another app does not make the document its own; a payment keeps it ours.
    status, body = raw_call(xero, "POST", f"/api.xro/2.0/Invoices/{mine[0]}",
                            {"Invoices": [{"Reference": "edited elsewhere"}]},
                            headers={"Authorization": "Bearer " + other})
    assert status == 200
    backend.record_payment(t, mine[0], "1")
    assert sorted(i.invoice_id for i in xero.accounting.get_invoices(t, created_by_my_app=True).invoices) == (
        sorted(mine))
    # Combined with If-Modified-Since: only our documents that changed.
    backend.advance(30)
    mark = _now(xero)
    backend.advance(30)
    backend.record_payment(t, by_hand, "1")
    backend.record_payment(t, mine[0], "1")
    assert [i.invoice_id for i in xero.accounting.get_invoices(t, if_modified_since=mark,
                                                               created_by_my_app=True).invoices] == [mine[0]]

    # GET /CreditNotes has no createdByMyApp (spec, SDK and Xero's documentation): ignored there.
    _create_credit_note(xero, customer, "5")
    backend_note = backend.credit_notes(t)
    status, body = _get(xero, "/api.xro/2.0/CreditNotes?createdByMyApp=true", token=other)
    assert [c["CreditNoteID"] for c in body["CreditNotes"]] == [n["CreditNoteID"] for n in backend_note]


# ---------------------------------------------------------------- Statuses, summaryOnly, order
def test_statuses_summary_only_and_order(xero: Xero, customer: str) -> None:
    t, backend = xero.tenant_id, xero.backend
    a, b, c = _create_invoices(xero, customer, ("OR-2", "100", "AUTHORISED"), ("OR-1", "300", "AUTHORISED"),
                               ("OR-3", "200", "DRAFT"))
    backend.void_document(t, "invoice", b)
    backend.delete_document(t, "invoice", c)
    backend.record_payment(t, a, "10")
    gone = xero.accounting.get_invoices(t, statuses=["VOIDED", "DELETED"]).invoices
    assert sorted(i.invoice_number for i in gone) == ["OR-1", "OR-3"]

    status, body = _get(xero, "/api.xro/2.0/Invoices?summaryOnly=true&order=InvoiceNumber%20DESC")
    assert [i["InvoiceNumber"] for i in body["Invoices"]] == ["OR-3", "OR-2", "OR-1"]
    for element in body["Invoices"]:
        assert not {"LineItems", "Payments", "CreditNotes"} & set(element)
        assert {"AmountDue", "AmountPaid", "AmountCredited", "Status", "UpdatedDateUTC", "Contact"} <= set(element)
    assert body["Invoices"][1]["AmountPaid"] == D("10.00")
    full = _get(xero, "/api.xro/2.0/Invoices?order=InvoiceNumber")[1]["Invoices"]
    assert [i["InvoiceNumber"] for i in full] == ["OR-1", "OR-2", "OR-3"]
    assert full[1]["LineItems"] and full[1]["Payments"][0]["Amount"] == D("10.00")
    by_total = xero.accounting.get_invoices(t, order="Total DESC, InvoiceNumber").invoices
    assert [i.invoice_number for i in by_total] == ["OR-1", "OR-3", "OR-2"]

    status, body = _get(xero, "/api.xro/2.0/Invoices?order=NoSuchField")
    assert status == 400 and body["Type"] == "QueryParseException" and "NoSuchField" in body["Message"]
    status, body = _get(xero, "/api.xro/2.0/Invoices?order=Total%20SIDEWAYS")
    assert status == 400
