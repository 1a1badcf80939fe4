"""The Great Expectations rules, on frames as the batch queries build them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from astute_xero.validation import InvoiceValidator, XeroChart, header_frame, line_frame

CHART = XeroChart("t", "Demo Org", frozenset({"200"}), frozenset({"OUTPUT"}), frozenset({"AUD"}))
D = Decimal


@pytest.fixture(scope="module")
def validator() -> InvoiceValidator:
    return InvoiceValidator()


def header(invoice_id=1, name="Acme", date=dt.date(2026, 6, 1), due=dt.date(2026, 6, 15), currency="AUD", lines=1,
           subtotal=D("10")):
    return (invoice_id, f"INV-{invoice_id}", name, date, due, currency, lines, subtotal)


def line(invoice_id=1, line_no=1, description="Work", quantity=D("1"), unit=D("10"), account="200", tax="OUTPUT"):
    return (invoice_id, line_no, description, quantity, unit, (quantity * unit).quantize(D("0.01")), account, tax)


def rules(validator, headers, lines):
    return sorted((i.invoice_id, i.line_no, i.rule) for i in validator.validate(header_frame(headers), line_frame(lines), CHART))


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
    ],
)
def test_each_rule_names_the_invoice_and_line(validator, headers, lines, expected):
    assert rules(validator, headers, lines) == expected


def test_a_discount_line_is_fine_when_the_invoice_is_positive(validator):
    assert rules(validator, [header(subtotal=D("5"))], [line(), line(line_no=2, unit=D("-5"))]) == []


def test_messages_say_what_to_fix(validator):
    (issue,) = validator.validate(header_frame([header()]), line_frame([line(account="999")]), CHART)
    assert "'999'" in issue.message and "Demo Org" in issue.message and issue.message.startswith("Line 1")
