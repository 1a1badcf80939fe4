"""Lock dates: an organisation's PeriodLockDate and EndOfYearLockDate, served by GET /Organisation, and Xero's
refusal of a posted document dated on or before either (an API app is a standard user, never an adviser)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from xero_python.accounting import (
    Allocation, Allocations, Contact, CreditNote, CreditNotes, Invoice, Invoices, LineItem,
)
from xero_python.exceptions import HTTPStatusException

from .sandbox_helpers import Xero, raw_call
from .test_sandbox_contract import _body, _check_accounting, validate  # noqa: F401 (the fixture)

PERIOD_LOCK = dt.date(2026, 6, 30)
YEAR_END_LOCK = dt.date(2026, 3, 31)
PERIOD_MESSAGE = "The document date cannot be before the period lock date, currently set at 30-Jun-2026"
YEAR_END_MESSAGE = "The document date cannot be before the end of year lock date, currently set at 31-Mar-2026"


def _line() -> list[LineItem]:
    return [LineItem(description="Labour hire", quantity=Decimal("1"), unit_amount=Decimal("100"), account_code="200")]


def _invoice(contact_id: str, number: str, date: dt.date, status: str = "AUTHORISED") -> Invoice:
    return Invoice(type="ACCREC", contact=Contact(contact_id=contact_id), invoice_number=number, date=date,
                   due_date=date + dt.timedelta(days=14), status=status, line_items=_line())


def _credit_note(contact_id: str, number: str, date: dt.date) -> CreditNote:
    return CreditNote(type="ACCRECCREDIT", contact=Contact(contact_id=contact_id), credit_note_number=number,
                      date=date, status="AUTHORISED", line_items=_line())


def _outcomes(elements) -> list[tuple]:
    return [(e.status_attribute_string, [v.message for v in e.validation_errors or []]) for e in elements]


@pytest.fixture
def customer(xero: Xero) -> str:
    return xero.backend.add_contact(xero.tenant_id, "Harbour Constructions")


def test_an_organisation_without_lock_dates_shows_none(xero: Xero) -> None:
    status, body = raw_call(xero, "GET", "/api.xro/2.0/Organisation")
    assert status == 200
    (organisation,) = body["Organisations"]
    assert "PeriodLockDate" not in organisation and "EndOfYearLockDate" not in organisation  # "Shown if set"
    (parsed,) = xero.accounting.get_organisations(xero.tenant_id).organisations
    assert parsed.period_lock_date is None and parsed.end_of_year_lock_date is None


def test_lock_dates_set_by_an_adviser_are_served_as_xero_serves_dates(xero: Xero) -> None:
    xero.backend.set_lock_dates(xero.tenant_id, period_lock_date=PERIOD_LOCK, end_of_year_lock_date=YEAR_END_LOCK)
    status, body = raw_call(xero, "GET", "/api.xro/2.0/Organisation")
    assert status == 200
    (organisation,) = body["Organisations"]
    assert organisation["PeriodLockDate"] == "/Date(1782777600000+0000)/"
    assert organisation["EndOfYearLockDate"] == "/Date(1774915200000+0000)/"
    (parsed,) = xero.accounting.get_organisations(xero.tenant_id).organisations
    assert (parsed.period_lock_date, parsed.end_of_year_lock_date) == (PERIOD_LOCK, YEAR_END_LOCK)

    xero.backend.set_lock_dates(xero.tenant_id)  # the adviser clears them
    (organisation,) = raw_call(xero, "GET", "/api.xro/2.0/Organisation")[1]["Organisations"]
    assert "PeriodLockDate" not in organisation and "EndOfYearLockDate" not in organisation


def test_an_invoice_on_or_before_the_period_lock_date_is_refused_and_its_neighbours_are_created(
        xero: Xero, customer: str) -> None:
    xero.backend.set_lock_dates(xero.tenant_id, period_lock_date=PERIOD_LOCK)
    batch = [_invoice(customer, "L-1", PERIOD_LOCK - dt.timedelta(days=1)),
             _invoice(customer, "L-2", PERIOD_LOCK),
             _invoice(customer, "L-3", PERIOD_LOCK + dt.timedelta(days=1))]
    result = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=batch), summarize_errors=False)
    assert _outcomes(result.invoices) == [("ERROR", [PERIOD_MESSAGE]), ("ERROR", [PERIOD_MESSAGE]), ("OK", [])]
    assert [i["InvoiceNumber"] for i in xero.backend.invoices(xero.tenant_id)] == ["L-3"]


def test_both_lock_dates_apply_to_an_app_each_with_its_own_message(xero: Xero, customer: str) -> None:
    xero.backend.set_lock_dates(xero.tenant_id, period_lock_date=PERIOD_LOCK, end_of_year_lock_date=YEAR_END_LOCK)
    batch = [_invoice(customer, "Y-1", YEAR_END_LOCK), _invoice(customer, "Y-2", dt.date(2026, 5, 1)),
             _invoice(customer, "Y-3", dt.date(2026, 7, 1))]
    result = xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=batch), summarize_errors=False)
    assert _outcomes(result.invoices) == [
        ("ERROR", [PERIOD_MESSAGE, YEAR_END_MESSAGE]), ("ERROR", [PERIOD_MESSAGE]), ("OK", [])]

    # The end of year lock date alone, later than a period lock date: the later one decides.
    xero.backend.set_lock_dates(xero.tenant_id, period_lock_date=YEAR_END_LOCK, end_of_year_lock_date=PERIOD_LOCK)
    result = xero.accounting.create_invoices(
        xero.tenant_id, Invoices(invoices=[_invoice(customer, "Y-4", dt.date(2026, 5, 1))]), summarize_errors=False)
    assert _outcomes(result.invoices) == [
        ("ERROR", ["The document date cannot be before the end of year lock date, currently set at 30-Jun-2026"])]


def test_a_credit_note_in_a_locked_period_is_refused(xero: Xero, customer: str) -> None:
    xero.backend.set_lock_dates(xero.tenant_id, end_of_year_lock_date=YEAR_END_LOCK)
    batch = [_credit_note(customer, "CN-1", YEAR_END_LOCK), _credit_note(customer, "CN-2", dt.date(2026, 4, 1))]
    result = xero.accounting.create_credit_notes(xero.tenant_id, CreditNotes(credit_notes=batch),
                                                 summarize_errors=False)
    assert _outcomes(result.credit_notes) == [("ERROR", [YEAR_END_MESSAGE]), ("OK", [])]
    assert [c["CreditNoteNumber"] for c in xero.backend.credit_notes(xero.tenant_id)] == ["CN-2"]


def test_a_draft_may_be_dated_in_a_locked_period_but_not_approved(xero: Xero, customer: str) -> None:
    """Xero: users can still create draft invoices and submit them for approval in a locked period."""
    xero.backend.set_lock_dates(xero.tenant_id, period_lock_date=PERIOD_LOCK)
    (draft,) = xero.accounting.create_invoices(
        xero.tenant_id, Invoices(invoices=[_invoice(customer, "D-1", PERIOD_LOCK, status="DRAFT")]),
        summarize_errors=False).invoices
    assert draft.status_attribute_string == "OK"
    approve = Invoice(invoice_id=draft.invoice_id, status="AUTHORISED")
    (refused,) = xero.accounting.update_or_create_invoices(
        xero.tenant_id, Invoices(invoices=[approve]), summarize_errors=False).invoices
    assert _outcomes([refused]) == [("ERROR", [PERIOD_MESSAGE])]
    assert [i["Status"] for i in xero.backend.invoices(xero.tenant_id)] == ["DRAFT"]


def test_a_hand_written_iso_date_is_held_to_the_same_rule(xero: Xero, customer: str) -> None:
    body = {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": customer}, "Date": "2026-06-30",
                          "DueDate": "2026-07-14", "Status": "AUTHORISED",
                          "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200"}]}]}
    xero.backend.set_lock_dates(xero.tenant_id, period_lock_date=PERIOD_LOCK)
    status, answer = raw_call(xero, "PUT", "/api.xro/2.0/Invoices?summarizeErrors=false", body)
    assert status == 200
    (element,) = answer["Invoices"]
    assert element["StatusAttributeString"] == "ERROR"
    assert [e["Message"] for e in element["ValidationErrors"]] == [PERIOD_MESSAGE]


def test_summarised_mode_refuses_a_locked_document_with_a_validation_exception(xero: Xero, customer: str) -> None:
    xero.backend.set_lock_dates(xero.tenant_id, period_lock_date=PERIOD_LOCK)
    with pytest.raises(HTTPStatusException) as info:
        xero.accounting.create_invoices(xero.tenant_id, Invoices(invoices=[_invoice(customer, "S-1", PERIOD_LOCK)]))
    body = json.loads(info.value.body)
    assert info.value.status == 400 and body["Type"] == "ValidationException"
    assert [e["ValidationErrors"][0]["Message"] for e in body["Elements"]] == [PERIOD_MESSAGE]


def test_an_allocation_dated_in_a_locked_period_is_refused(xero: Xero, customer: str) -> None:
    (invoice,) = xero.accounting.create_invoices(
        xero.tenant_id, Invoices(invoices=[_invoice(customer, "A-1", dt.date(2026, 6, 1))])).invoices
    (credit,) = xero.accounting.create_credit_notes(
        xero.tenant_id, CreditNotes(credit_notes=[_credit_note(customer, "ACN-1", dt.date(2026, 6, 2))])).credit_notes
    xero.backend.set_lock_dates(xero.tenant_id, period_lock_date=PERIOD_LOCK)
    def allocate(on: dt.date):
        allocation = Allocation(invoice=Invoice(invoice_id=invoice.invoice_id), amount=Decimal("10"), date=on)
        return xero.accounting.create_credit_note_allocation(
            xero.tenant_id, credit.credit_note_id, Allocations(allocations=[allocation]), summarize_errors=False,
        ).allocations[0]

    assert _outcomes([allocate(dt.date(2026, 6, 2))]) == [("ERROR", [PERIOD_MESSAGE])]
    assert _outcomes([allocate(dt.date(2026, 7, 1))]) == [("OK", [])]


def test_set_lock_dates_needs_a_known_organisation(xero: Xero) -> None:
    with pytest.raises(KeyError):
        xero.backend.set_lock_dates("00000000-0000-0000-0000-00000000dead", period_lock_date=PERIOD_LOCK)


def test_the_organisation_and_a_refused_element_validate_against_xeros_spec(
        xero: Xero, customer: str, validate) -> None:
    xero.backend.set_lock_dates(xero.tenant_id, period_lock_date=PERIOD_LOCK, end_of_year_lock_date=YEAR_END_LOCK)
    raw = {"_preload_content": False}
    status, body = _body(lambda: xero.accounting.get_organisations(xero.tenant_id, **raw))
    assert status == 200
    _check_accounting(validate, "Organisations", body)
    status, body = _body(lambda: xero.accounting.create_invoices(
        xero.tenant_id, Invoices(invoices=[_invoice(customer, "C-1", PERIOD_LOCK)]), summarize_errors=False, **raw))
    assert status == 200
    _check_accounting(validate, "Invoices", body)
