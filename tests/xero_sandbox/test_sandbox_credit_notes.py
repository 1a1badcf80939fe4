"""Credit notes and allocations."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from xero_python.accounting import (Allocation, Allocations, Contact, CreditNote, CreditNotes, Invoice, Invoices,
                                    LineItem)

from .sandbox_helpers import Xero, raw_call


def _lines(amount: str) -> list[LineItem]:
    return [LineItem(description="x", quantity=1, unit_amount=Decimal(amount), account_code="200")]


@pytest.fixture
def setup(xero: Xero) -> dict[str, str]:
    t = xero.tenant_id
    customer = xero.backend.add_contact(t, "Credit Customer")
    stranger = xero.backend.add_contact(t, "Someone Else")
    invoices = xero.accounting.create_invoices(t, Invoices(invoices=[
        Invoice(type="ACCREC", contact=Contact(contact_id=customer), invoice_number="CI-1", status="AUTHORISED",
                date=dt.date(2026, 7, 1), line_items=_lines("100")),  # 110.00 due
        Invoice(type="ACCREC", contact=Contact(contact_id=stranger), invoice_number="CI-2", status="AUTHORISED",
                date=dt.date(2026, 7, 1), line_items=_lines("100")),
        Invoice(type="ACCREC", contact=Contact(contact_id=customer), invoice_number="CI-3", status="DRAFT",
                date=dt.date(2026, 7, 1), line_items=_lines("100")),
    ])).invoices
    notes = xero.accounting.create_credit_notes(t, CreditNotes(credit_notes=[
        CreditNote(type="ACCRECCREDIT", contact=Contact(contact_id=customer), status="AUTHORISED",
                   credit_note_number="CN-A", date=dt.date(2026, 7, 2), line_items=_lines("200")),  # 220.00
        CreditNote(type="ACCRECCREDIT", contact=Contact(contact_id=customer), status="DRAFT",
                   date=dt.date(2026, 7, 2), line_items=_lines("10")),
    ])).credit_notes
    return {"inv1": invoices[0].invoice_id, "inv2": invoices[1].invoice_id, "inv3": invoices[2].invoice_id,
            "cn": notes[0].credit_note_id, "draft_cn": notes[1].credit_note_id, "customer": customer}


def _allocate(xero: Xero, note: str, invoice: str, amount: str):
    return xero.accounting.create_credit_note_allocation(xero.tenant_id, note, Allocations(allocations=[
        Allocation(amount=Decimal(amount), invoice=Invoice(invoice_id=invoice), date=dt.date(2026, 7, 3))]),
        summarize_errors=False).allocations[0]


def test_credit_note_totals_and_remaining_credit(xero: Xero, setup: dict[str, str]) -> None:
    note = xero.accounting.get_credit_note(xero.tenant_id, setup["cn"]).credit_notes[0]
    assert (note.total, note.remaining_credit, note.status, note.credit_note_number) == (
        Decimal("220.00"), Decimal("220.00"), "AUTHORISED", "CN-A")


def test_allocation_is_limited_by_amount_due(xero: Xero, setup: dict[str, str]) -> None:
    refused = _allocate(xero, setup["cn"], setup["inv1"], "150")
    assert refused.status_attribute_string == "ERROR"
    assert refused.validation_errors[0].message == (
        "The amount being allocated (150.00) exceeds the amount due (110.00) on the invoice.")
    done = _allocate(xero, setup["cn"], setup["inv1"], "110")
    assert done.status_attribute_string == "OK" and done.amount == Decimal("110.00")
    invoice = xero.accounting.get_invoice(xero.tenant_id, setup["inv1"]).invoices[0]
    assert (invoice.amount_due, invoice.amount_credited, invoice.status) == (Decimal("0.00"), Decimal("110.00"), "PAID")
    assert invoice.credit_notes[0].credit_note_id == setup["cn"]
    note = xero.accounting.get_credit_note(xero.tenant_id, setup["cn"]).credit_notes[0]
    assert note.remaining_credit == Decimal("110.00") and note.status == "AUTHORISED"
    assert [a.invoice.invoice_id for a in note.allocations] == [setup["inv1"]]


def test_allocation_is_limited_by_remaining_credit_and_pays_off_the_note(xero: Xero, setup: dict[str, str]) -> None:
    _allocate(xero, setup["cn"], setup["inv1"], "60")
    _allocate(xero, setup["cn"], setup["inv1"], "50")
    more = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[Invoice(
        type="ACCREC", contact=Contact(contact_id=setup["customer"]),
        status="AUTHORISED", date=dt.date(2026, 7, 1), line_items=_lines("200"))])).invoices[0]  # 220 due
    refused = _allocate(xero, setup["cn"], more.invoice_id, "111")
    assert "exceeds the remaining credit (110.00) on the credit note" in refused.validation_errors[0].message
    _allocate(xero, setup["cn"], more.invoice_id, "110")
    note = xero.accounting.get_credit_note(xero.tenant_id, setup["cn"]).credit_notes[0]
    assert (note.remaining_credit, note.status) == (Decimal("0.00"), "PAID")


def test_allocation_rules(xero: Xero, setup: dict[str, str]) -> None:
    assert _allocate(xero, setup["cn"], setup["inv2"], "10").validation_errors[0].message == (
        "The invoice and the credit note must belong to the same contact.")
    assert _allocate(xero, setup["cn"], setup["inv3"], "10").validation_errors[0].message == (
        "The invoice must be AUTHORISED to receive an allocation; its status is DRAFT.")
    assert _allocate(xero, setup["draft_cn"], setup["inv1"], "5").validation_errors[0].message == (
        "The credit note must be AUTHORISED to be allocated; its status is DRAFT.")
    assert xero.backend.invoices(xero.tenant_id)[0]["AmountDue"] == Decimal("110.00")


def test_invoice_with_credit_cannot_be_voided(xero: Xero, setup: dict[str, str]) -> None:
    _allocate(xero, setup["cn"], setup["inv1"], "10")
    result = xero.accounting.update_or_create_invoices(xero.tenant_id, Invoices(invoices=[
        Invoice(invoice_id=setup["inv1"], status="VOIDED")]), summarize_errors=False).invoices[0]
    assert result.validation_errors[0].message == (
        "This document cannot be edited as it has a payment or credit note allocated to it.")


def test_credit_notes_listing(xero: Xero, setup: dict[str, str]) -> None:
    api, t = xero.accounting, xero.tenant_id
    assert {n.credit_note_id for n in api.get_credit_notes(t).credit_notes} == {setup["cn"], setup["draft_cn"]}
    assert [n.credit_note_id for n in api.get_credit_notes(t, where='Status=="DRAFT"').credit_notes] == [setup["draft_cn"]]
    assert len(xero.backend.credit_notes(t)) == 2


def test_url_on_a_credit_note_is_ignored(xero: Xero, setup: dict[str, str]) -> None:
    """The spec's CreditNote has no Url: Xero neither stores nor returns one (valid or not)."""
    for url in ("https://astute.example.com/credit-notes/7", "not a url"):
        status, body = raw_call(xero, "PUT", "/api.xro/2.0/CreditNotes?summarizeErrors=false", {"CreditNotes": [{
            "Type": "ACCRECCREDIT", "Contact": {"ContactID": setup["customer"]}, "Url": url, "Status": "AUTHORISED",
            "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 5, "AccountCode": "200"}]}]})
        note = body["CreditNotes"][0]
        assert status == 200 and note["StatusAttributeString"] == "OK" and "Url" not in note
        _, fetched = raw_call(xero, "GET", f"/api.xro/2.0/CreditNotes/{note['CreditNoteID']}")
        assert "Url" not in fetched["CreditNotes"][0]


def test_credit_note_number_and_reference_lengths(xero: Xero, setup: dict[str, str]) -> None:
    def put(**fields: object) -> dict:
        _, body = raw_call(xero, "PUT", "/api.xro/2.0/CreditNotes?summarizeErrors=false", {"CreditNotes": [{
            "Type": "ACCRECCREDIT", "Contact": {"ContactID": setup["customer"]}, **fields,
            "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 5, "AccountCode": "200"}]}]})
        return body["CreditNotes"][0]

    assert put(CreditNoteNumber="N" * 255)["StatusAttributeString"] == "OK"
    refused = put(CreditNoteNumber="M" * 256)
    assert refused["ValidationErrors"] == [{"Message": "Credit Note Number must be no more than 255 characters long."}]
    assert "CreditNoteNumber" not in refused
    assert put(Reference="r" * 256)["ValidationErrors"] == [
        {"Message": "Reference must be no more than 255 characters long."}]
