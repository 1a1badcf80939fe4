"""Astute invoices and credit notes as Xero sees them: pure functions, no I/O.

This is the one place that decides what an Astute document looks like in Xero
(the help article's rules): an invoice is ACCREC, a credit note ACCRECCREDIT,
both AUTHORISED so that they are posted (awaiting payment, or credit to
allocate), the document's currency else its entity's region default, the
linked Contact by ContactID, unit amounts with their 4 decimals (sent with unitdp=4).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from xero_python.accounting import (
    Contact,
    CreditNote,
    CurrencyCode,
    Invoice,
    LineAmountTypes,
    LineItem,
    LineItemTracking,
)

from astute_xero.documents import CREDIT_NOTE, INVOICE, DocumentKind

INVOICE_TYPE = "ACCREC"
CREDIT_NOTE_TYPE = "ACCRECCREDIT"
DOCUMENT_STATUS = "AUTHORISED"
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
class AstuteDocument:
    """A Sent invoice or credit note ready to go: its lines, its effective currency and its customer's Contact."""

    kind: DocumentKind
    document_id: int
    number: str | None
    reference: str | None
    document_date: dt.date
    due_date: dt.date | None  # invoices only
    currency: str  # the document's own, else the entity's regulatory region default
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


def to_xero(document: AstuteDocument) -> Invoice | CreditNote:
    common = {
        "status": DOCUMENT_STATUS,
        "contact": Contact(contact_id=document.xero_contact_id),
        "reference": document.reference,
        "date": document.document_date,
        "currency_code": CurrencyCode(document.currency),
        "line_amount_types": LineAmountTypes(document.line_amount_types),
        "line_items": [to_xero_line(line) for line in document.lines],
    }
    if document.kind is INVOICE:
        return Invoice(type=INVOICE_TYPE, invoice_number=document.number, due_date=document.due_date, **common)
    if document.kind is CREDIT_NOTE:
        return CreditNote(type=CREDIT_NOTE_TYPE, credit_note_number=document.number, **common)
    raise ValueError(f"unknown document kind {document.kind}")


def xero_id(element: Invoice | CreditNote) -> str | None:
    """The id Xero gave an invoice or a credit note (None, or the zero UUID, when it saved nothing)."""
    value = element.invoice_id if isinstance(element, Invoice) else element.credit_note_id
    return str(value) if value else None


def xero_number(element: Invoice | CreditNote) -> str | None:
    return element.invoice_number if isinstance(element, Invoice) else element.credit_note_number


Fingerprint = tuple


def _amount(value: object) -> str:
    return str(Decimal(str(value)).quantize(Decimal("0.0001")))


def _day(value: object) -> str:
    return value.isoformat()[:10] if hasattr(value, "isoformat") else str(value)[:10]


def fingerprint(document: AstuteDocument) -> Fingerprint:
    """What identifies a document we sent when it has no number: everything we put in it."""
    return (
        document.xero_contact_id.lower(),
        _day(document.document_date),
        _day(document.due_date) if document.due_date else "",
        document.currency,
        document.reference or "",
        tuple(
            (line.description, _amount(line.quantity), _amount(line.unit_amount), line.account_code or "", line.tax_type or "")
            for line in document.lines
        ),
    )


def xero_fingerprint(element: Invoice | CreditNote) -> Fingerprint:
    """The same, read back from Xero's copy (fetched with unitdp=4)."""
    return (
        str(element.contact.contact_id).lower() if element.contact else "",
        _day(element.date),
        _day(element.due_date) if element.due_date else "",
        getattr(element.currency_code, "value", element.currency_code),
        element.reference or "",
        tuple(
            (line.description, _amount(line.quantity), _amount(line.unit_amount), line.account_code or "", line.tax_type or "")
            for line in element.line_items or []
        ),
    )
