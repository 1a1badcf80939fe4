"""Astute invoices as Xero sees them: pure functions, no I/O.

This is the one place that decides what an Astute invoice looks like in Xero
(the help article's rules): ACCREC, AUTHORISED so that it is posted and awaits
payment, the invoice's currency else its entity's region default, the linked
Contact by ContactID, unit amounts with their 4 decimals (sent with unitdp=4).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from xero_python.accounting import (
    Contact,
    CurrencyCode,
    Invoice,
    LineAmountTypes,
    LineItem,
    LineItemTracking,
)

INVOICE_TYPE = "ACCREC"
INVOICE_STATUS = "AUTHORISED"
UNIT_DECIMAL_PLACES = 4


@dataclass(frozen=True)
class AstuteLine:
    line_no: int
    description: str
    quantity: Decimal
    unit_amount: Decimal
    account_code: str | None
    tax_type: str | None
    tracking_name: str | None
    tracking_option: str | None


@dataclass(frozen=True)
class AstuteInvoice:
    """A Sent invoice ready to go: its lines, its effective currency and its customer's Contact."""

    invoice_id: int
    invoice_number: str | None
    reference: str | None
    invoice_date: dt.date
    due_date: dt.date
    currency: str  # the invoice's own, else the entity's regulatory region default
    line_amount_types: str
    xero_contact_id: str
    lines: tuple[AstuteLine, ...]


def to_xero_line(line: AstuteLine) -> LineItem:
    tracking = None
    if line.tracking_name and line.tracking_option:
        tracking = [LineItemTracking(name=line.tracking_name, option=line.tracking_option)]
    return LineItem(
        description=line.description,
        quantity=line.quantity,
        unit_amount=line.unit_amount,
        account_code=line.account_code,
        tax_type=line.tax_type,
        tracking=tracking,
    )


def to_xero_invoice(invoice: AstuteInvoice) -> Invoice:
    return Invoice(
        type=INVOICE_TYPE,
        status=INVOICE_STATUS,
        contact=Contact(contact_id=invoice.xero_contact_id),
        invoice_number=invoice.invoice_number,
        reference=invoice.reference,
        date=invoice.invoice_date,
        due_date=invoice.due_date,
        currency_code=CurrencyCode(invoice.currency),
        line_amount_types=LineAmountTypes(invoice.line_amount_types),
        line_items=[to_xero_line(line) for line in invoice.lines],
    )


Fingerprint = tuple


def _amount(value: object) -> str:
    return str(Decimal(str(value)).quantize(Decimal("0.0001")))


def _day(value: object) -> str:
    return value.isoformat()[:10] if hasattr(value, "isoformat") else str(value)[:10]


def fingerprint(invoice: AstuteInvoice) -> Fingerprint:
    """What identifies an invoice we sent when it has no number: everything we put in it."""
    return (
        invoice.xero_contact_id.lower(),
        _day(invoice.invoice_date),
        _day(invoice.due_date),
        invoice.currency,
        invoice.reference or "",
        tuple(
            (line.description, _amount(line.quantity), _amount(line.unit_amount), line.account_code or "", line.tax_type or "")
            for line in invoice.lines
        ),
    )


def xero_fingerprint(invoice: Invoice) -> Fingerprint:
    """The same, read back from Xero's copy (fetched with unitdp=4)."""
    return (
        str(invoice.contact.contact_id).lower() if invoice.contact else "",
        _day(invoice.date),
        _day(invoice.due_date),
        getattr(invoice.currency_code, "value", invoice.currency_code),
        invoice.reference or "",
        tuple(
            (line.description, _amount(line.quantity), _amount(line.unit_amount), line.account_code or "", line.tax_type or "")
            for line in invoice.line_items or []
        ),
    )
