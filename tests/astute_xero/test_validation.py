"""The Great Expectations rules, on frames as the batch queries build them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from astute_xero.export.documents import CREDIT_NOTE, INVOICE
from astute_xero.export.validation import DocumentValidator, XeroChart, header_frame, line_frame

CHART = XeroChart("t", "Demo Org", frozenset({"200"}), frozenset({"OUTPUT"}), frozenset({"AUD"}),
                  tracking={"Region": frozenset({"North", "South"})})
D = Decimal


@pytest.fixture(scope="module")
def validator() -> DocumentValidator:
    return DocumentValidator()


def header(invoice_id=1, name="Acme", date=dt.date(2026, 6, 1), due=dt.date(2026, 6, 15), currency="AUD", lines=1,
           subtotal=D("10"), credited=None, problem=None, number=None, reference=None):
    return (invoice_id, number or f"INV-{invoice_id}", name, date, due, currency, lines, subtotal, credited,
            f"INV-{credited}", problem, reference)


def line(invoice_id=1, line_no=1, description="Work", quantity=D("1"), unit=D("10"), account="200", tax="OUTPUT",
         tracking=(None, None)):
    return (invoice_id, line_no, description, quantity, unit, (quantity * unit).quantize(D("0.01")), account, tax,
            *tracking)


def rules(validator, headers, lines, kind=INVOICE):
    issues = validator.validate(kind, header_frame(headers), line_frame(lines), CHART)
    return sorted(((i.document_id, i.line_no, i.rule) for i in issues), key=str)


def test_a_valid_invoice_has_no_issue(validator):
    assert rules(validator, [header()], [line()]) == []


@pytest.mark.parametrize(
    ("headers", "lines", "expected"),
    [
        ([header(name="")], [line()], [(1, None, "customer_name_missing")]),
        ([header(lines=0, subtotal=D("0"))], [], [(1, None, "no_lines")]),
        ([header(due=dt.date(2026, 5, 1))], [line()], [(1, None, "due_before_invoice_date")]),
        ([header(currency="USD")], [line()], [(1, None, "currency_not_subscribed")]),
        ([header(subtotal=D("-5"))], [line(unit=D("-5"))], [(1, None, "negative_total")]),
        ([header()], [line(quantity=D("38"), unit=D("9999999.0000"))], [(1, 1, "line_amount_implausible")]),
        ([header()], [line(account=None)], [(1, 1, "account_code_missing")]),
        ([header()], [line(account="999")], [(1, 1, "account_code_unknown")]),
        ([header()], [line(tax="GST")], [(1, 1, "tax_type_unknown")]),
        ([header()], [line(description="x" * 4001)], [(1, 1, "description_too_long")]),
        ([header(name="N" * 256)], [line()], [(1, None, "customer_name_too_long")]),
        ([header(number="7" * 256)], [line()], [(1, None, "number_too_long")]),
        ([header(reference="R" * 256)], [line()], [(1, None, "reference_too_long")]),
        ([header()], [line(tracking=("Region", None))], [(1, 1, "tracking_incomplete")]),
        ([header()], [line(tracking=(None, "North"))], [(1, 1, "tracking_incomplete")]),
        ([header()], [line(tracking=("Regoin", "North"))], [(1, 1, "tracking_unknown")]),
        ([header()], [line(tracking=("Region", "East"))], [(1, 1, "tracking_unknown")]),
    ],
)
def test_each_rule_names_the_invoice_and_line(validator, headers, lines, expected):
    assert rules(validator, headers, lines) == expected


def test_tracking_is_matched_as_xero_matches_it_ignoring_case(validator):
    assert rules(validator, [header()], [line(tracking=(" region", "NORTH"))]) == []


def test_tracking_messages_say_what_the_organisation_has(validator):
    headers = [header(), header(invoice_id=2)]
    lines = [line(tracking=("Regoin", "North")), line(invoice_id=2, tracking=("Region", "East"))]
    messages = [i.message for i in validator.validate(INVOICE, header_frame(headers), line_frame(lines), CHART)]
    assert any("'Regoin' does not exist" in m and "Region" in m for m in messages)
    assert any("no active option 'East'" in m and "North, South" in m for m in messages)


def test_a_discount_line_is_fine_when_the_invoice_is_positive(validator):
    assert rules(validator, [header(subtotal=D("5"))], [line(), line(line_no=2, unit=D("-5"))]) == []


def test_messages_say_what_to_fix(validator):
    (issue,) = validator.validate(INVOICE, header_frame([header()]), line_frame([line(account="999")]), CHART)
    assert "'999'" in issue.message and "Demo Org" in issue.message and issue.message.startswith("Line 1")


def test_credit_notes_follow_the_same_rules_but_have_no_due_date(validator):
    # A credit note has no due date: the due-date rule is not theirs, whatever the column holds.
    assert rules(validator, [header(due=dt.date(2026, 5, 1))], [line()], CREDIT_NOTE) == []
    assert rules(validator, [header(currency="USD")], [line(account="999")], CREDIT_NOTE) == [
        (1, 1, "account_code_unknown"), (1, None, "currency_not_subscribed")]


def test_a_credit_note_for_an_invoice_xero_could_not_allocate_it_to_is_held(validator):
    bad = header(credited=7, problem="belongs to another customer")
    (issue,) = validator.validate(CREDIT_NOTE, header_frame([bad, header(invoice_id=2, credited=8)]),
                                  line_frame([line(), line(invoice_id=2)]), CHART)
    assert (issue.document_id, issue.rule) == (1, "credited_invoice_mismatch")
    assert "credits invoice INV-7, which belongs to another customer" in issue.message
    assert rules(validator, [bad], [line()], INVOICE) == [], "the rule is about credit notes only"


def test_tracking_in_a_batch_where_some_lines_have_none(validator):
    """pandas turns the missing values of a mixed text column into NaN: still read as missing."""
    lines = [line(), line(line_no=2, tracking=("Region", None)), line(line_no=3, tracking=(None, "North"))]
    issues = validator.validate(INVOICE, header_frame([header()]), line_frame(lines), CHART)
    assert sorted((i.line_no, i.rule) for i in issues) == [(2, "tracking_incomplete"), (3, "tracking_incomplete")]
    messages = {i.line_no: i.message for i in issues}
    assert "category 'Region' but no option" in messages[2] and "option 'North' but no category" in messages[3]


def test_a_document_dated_on_or_before_the_lock_date_is_held_and_the_day_after_passes(validator):
    locked = XeroChart("t-locked", "Demo Org", frozenset({"200"}), frozenset({"OUTPUT"}), frozenset({"AUD"}),
                       period_lock_date=dt.date(2026, 6, 30), end_of_year_lock_date=dt.date(2026, 3, 31))
    headers = [header(1, date=dt.date(2026, 6, 29), due=dt.date(2026, 7, 13)),
               header(2, date=dt.date(2026, 6, 30), due=dt.date(2026, 7, 14)),
               header(3, date=dt.date(2026, 7, 1), due=dt.date(2026, 7, 15))]
    lines = [line(1), line(2), line(3)]
    issues = validator.validate(INVOICE, header_frame(headers), line_frame(lines), locked)
    assert sorted((i.document_id, i.rule) for i in issues) == [(1, "lock_date"), (2, "lock_date")]
    message = next(i.message for i in issues if i.document_id == 2)
    assert message == (
        "Invoice INV-2 is dated 2026-06-30, on or before the period lock date 2026-06-30 of the Xero organisation "
        "'Demo Org': Xero accepts nothing dated on or before it. To send it, ask your Xero adviser to move the lock "
        "date, or re-date the invoice in Astute.")
    credit_notes = validator.validate(CREDIT_NOTE, header_frame([header(4, date=dt.date(2026, 3, 31))]),
                                      line_frame([line(4)]), locked)
    assert [(i.document_id, i.rule) for i in credit_notes] == [(4, "lock_date")]
    assert "Credit note INV-4 is dated 2026-03-31" in credit_notes[0].message
    assert "re-date the credit note in Astute" in credit_notes[0].message


def test_without_lock_dates_no_document_is_held_for_its_date(validator):
    assert rules(validator, [header(date=dt.date(2000, 1, 1), due=dt.date(2000, 1, 2))], [line()]) == []
