"""Which Xero document, if any, is the copy of an Astute document that an earlier call may have created.

Reconciliation must never adopt the wrong document, and never miss ours. A Xero document is
adopted for an Astute document only if all of these hold:
- it is of our type (ACCREC for invoices, ACCRECCREDIT for credit notes: `InvoiceNumbers=` also
  returns supplier bills, whose numbers Xero does not keep unique against ours);
- it is not deleted or voided, and belongs to the document's Contact;
- it carries our identity: the Url fixed at the first claim (invoices); else, for a credit note or a
  row claimed before identities existed, the same number, or for an unnumbered one the same content
  (what Xero keeps as sent: see mapping.same_content);
- it is linked to no other Astute document.
A numbered document whose number Xero already gives to another of our type's documents cannot go
(Xero keeps those numbers unique): it fails with a reason that says what Xero holds.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from xero_python.accounting import CreditNote, Invoice

from astute_xero.export.documents import INVOICE, DocumentKind
from astute_xero.export.mapping import AstuteDocument, same_content, same_number, xero_id, xero_number, xero_type
from astute_xero.xero.client import enum_value

GONE_STATUSES = ("DELETED", "VOIDED")


@dataclass(frozen=True)
class PriorAttempt:
    """What earlier attempts left on a document's export row (read before this attempt's claim)."""

    status: str | None
    first_claimed_at: dt.datetime | None
    last_sent_at: dt.datetime | None
    source_url: str | None

    @property
    def attempted(self) -> bool:
        """An earlier call may have carried it: Xero may hold it (also when it was recorded as failed)."""
        return self.first_claimed_at is not None and self.status in ("sending", "failed", "reset")


NEVER_ATTEMPTED = PriorAttempt(None, None, None, None)


@dataclass(frozen=True)
class Verdict:
    """The outcome of looking for a document in Xero: adopted (xero_id), blocked (reason), or neither."""

    xero_id: str | None = None
    conflict: str | None = None



def _live(element: Invoice | CreditNote, kind: DocumentKind) -> bool:
    """One of our type (sales, not a supplier's bill or credit), neither deleted nor voided."""
    return enum_value(element.type) == xero_type(kind) and enum_value(element.status) not in GONE_STATUSES


def is_our_copy(document: AstuteDocument, prior: PriorAttempt, element: Invoice | CreditNote) -> bool:
    if not prior.attempted:
        return False  # never sent by us: whatever Xero holds was made by someone else
    if not _live(element, document.kind):
        return False
    if not element.contact or str(element.contact.contact_id).lower() != document.xero_contact_id.lower():
        return False
    if prior.source_url is not None:
        return getattr(element, "url", None) == prior.source_url
    if document.number:
        return same_number(xero_number(element), document.number)
    return same_content(document, element)


def astute_url_matcher(template: str) -> Callable[[str | None], bool]:
    """Whether a Xero invoice's Url is the link of an Astute invoice made from `template` (ASTUTE_INVOICE_URL,
    {invoice_id} in it): our invoices' identity in Xero, whichever Xero app sent them. Not createdByMyApp,
    which Xero answers per client id: after the organisation moves to another app it forgets every invoice
    the old one sent."""
    prefix, _, suffix = template.partition("{invoice_id}")
    pattern = re.compile(re.escape(prefix) + "[0-9]+" + re.escape(suffix))
    return lambda url: bool(url) and pattern.fullmatch(url) is not None


def is_history_copy(element: Invoice) -> bool:
    """A history invoice (mock-exported at go-live, keyed into Xero before) found by its number: a live
    sales invoice. Xero keeps ACCREC numbers unique, so there is at most one."""
    return _live(element, INVOICE)


def describe(element: Invoice | CreditNote) -> str:
    """A Xero document as a finance person would recognise it."""
    label = {"ACCREC": "sales invoice", "ACCPAY": "supplier bill", "ACCRECCREDIT": "sales credit note",
             "ACCPAYCREDIT": "supplier credit note"}.get(str(enum_value(element.type)), "document")
    contact = element.contact.name if element.contact and element.contact.name else "an unnamed Contact"
    total = f"{element.total:,.2f} {enum_value(element.currency_code) or ''}".strip() if element.total is not None else "no total"
    return f"a {label} {xero_number(element) or '(no number)'} for '{contact}', {total}, {enum_value(element.status)}"


def judge(
    documents: list[tuple[AstuteDocument, PriorAttempt]],
    found: list[Invoice | CreditNote],
    linked_elsewhere: dict[str, str],
) -> dict[int, Verdict]:
    """One verdict per document: each Xero document adopted at most once.

    `linked_elsewhere`: Xero id -> the Astute document it is already linked to (by label).
    """
    taken: set[str] = set()
    verdicts: dict[int, Verdict] = {}
    for document, prior in documents:
        ours = next(
            (x for x in found
             if xero_id(x) and xero_id(x) not in taken and xero_id(x) not in linked_elsewhere
             and is_our_copy(document, prior, x)),
            None,
        )
        if ours is not None:
            taken.add(xero_id(ours))
            verdicts[document.document_id] = Verdict(xero_id=xero_id(ours))
            continue
        holder = next(
            (x for x in found
             if document.number and same_number(xero_number(x), document.number)
             and enum_value(x.type) == xero_type(document.kind)),
            None,
        )
        verdicts[document.document_id] = Verdict(conflict=_conflict(document, holder, linked_elsewhere) if holder else None)
    return verdicts


def _conflict(document: AstuteDocument, holder: Invoice | CreditNote, linked_elsewhere: dict[str, str]) -> str:
    why = (
        f"it is already linked to Astute {linked_elsewhere[xero_id(holder)]}"
        if xero_id(holder) in linked_elsewhere
        else "this export did not send it (it has no link to this Astute document)"
        if enum_value(holder.status) not in GONE_STATUSES
        else f"it is {enum_value(holder.status)}"
    )
    return (
        f"Xero already holds {describe(holder)}, and {why}. Xero keeps {document.kind.label.lower()} numbers "
        f"unique, so this one cannot go as it is: if that is this {document.kind.label.lower()} keyed in by hand, "
        "void one of the two in Xero; otherwise renumber this one in Astute. It is tried again by the next run."
    )
