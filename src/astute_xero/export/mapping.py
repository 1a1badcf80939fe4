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

from astute_xero.export.documents import CREDIT_NOTE, INVOICE, DocumentKind

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
    if line.tracking_name or line.tracking_option:  # validation holds back a line with only one of the two
        tracking = [LineItemTracking(name=line.tracking_name, option=line.tracking_option)]
    return LineItem(
        description=line.description,
        quantity=line.quantity,
        unit_amount=line.unit_amount,
        account_code=line.account_code,
        tax_type=line.tax_type,
        tracking=tracking,
    )


def to_xero(document: AstuteDocument, source_url: str | None = None) -> Invoice | CreditNote:
    """The Xero model of a document. An invoice carries `source_url`, our identity in Xero (its Url)."""
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
        return Invoice(type=INVOICE_TYPE, invoice_number=document.number, due_date=document.due_date, url=source_url,
                       **common)
    if document.kind is CREDIT_NOTE:
        return CreditNote(type=CREDIT_NOTE_TYPE, credit_note_number=document.number, **common)
    raise ValueError(f"unknown document kind {document.kind}")


def xero_type(kind: DocumentKind) -> str:
    return INVOICE_TYPE if kind is INVOICE else CREDIT_NOTE_TYPE


def xero_id(element: Invoice | CreditNote) -> str | None:
    """The id Xero gave an invoice or a credit note (None, or the zero UUID, when it saved nothing)."""
    value = element.invoice_id if isinstance(element, Invoice) else element.credit_note_id
    return str(value) if value else None


def xero_number(element: Invoice | CreditNote) -> str | None:
    return element.invoice_number if isinstance(element, Invoice) else element.credit_note_number


def same_number(a: str | None, b: str | None) -> bool:
    """Xero keeps numbers unique ignoring case and surrounding spaces."""
    return a is not None and b is not None and a.strip().casefold() == b.strip().casefold()


def _amount(value: object) -> str:
    return str(Decimal(str(value)).quantize(Decimal("0.0001")))


def _day(value: object) -> str:
    return value.isoformat()[:10] if hasattr(value, "isoformat") else str(value)[:10]


def same_content(document: AstuteDocument, element: Invoice | CreditNote) -> bool:
    """Whether Xero's copy (read with unitdp=4) holds what we sent for this document.

    Only what Xero keeps as sent is compared: Contact, dates, currency, reference, and each line's
    description, quantity, unit amount and account code. A line's tax type only when we sent one:
    Xero fills in the account's default when a line has none. Tracking is not compared (Xero adds
    its IDs and its own spelling).
    """
    lines = element.line_items or []
    if (
        str(element.contact.contact_id if element.contact else "").lower() != document.xero_contact_id.lower()
        or _day(element.date) != _day(document.document_date)
        or (document.due_date is not None and (not element.due_date or _day(element.due_date) != _day(document.due_date)))
        or getattr(element.currency_code, "value", element.currency_code) != document.currency
        or (element.reference or "") != (document.reference or "")
        or len(lines) != len(document.lines)
    ):
        return False
    return all(
        (sent.description, _amount(sent.quantity), _amount(sent.unit_amount), sent.account_code or "")
        == (got.description, _amount(got.quantity), _amount(got.unit_amount), got.account_code or "")
        and (sent.tax_type is None or sent.tax_type == got.tax_type)
        for sent, got in zip(document.lines, lines)
    )
