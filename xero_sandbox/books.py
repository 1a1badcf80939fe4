"""Accounting rules for one tenant: contacts, invoices, credit notes and
allocations, validated and computed the way Xero does, rendered to wire dicts.

Each element of a batch is judged on its own: a bad one becomes an echo with
``ValidationErrors`` and is not saved, the good ones are saved (Xero does the
same, even when it then answers 400 in summarised mode)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable
from urllib.parse import urlsplit

from .records import (AllocationRecord, Contact, Document, LineItem, LineTracking, PaymentRecord, Tenant,
                      TrackingCategory, TrackingOption, new_id)
from .wire import ZERO_UUID, fold, ms_date, ms_datetime, parse_date, round2, round_dp, to_decimal, utc_date
from .where import compile_where

# ISO 4217 codes the spec's CurrencyCode enum knows; an unknown code must not be
# echoed back because xero-python raises ValueError on an invalid enum value.
KNOWN_CURRENCIES = frozenset(
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP "
    "BYN BYR BZD CAD CDF CHF CLF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EEK EGP ERN ETB EUR "
    "FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY "
    "KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LTL LVL LYD MAD MDL MGA MKD MMK MNT MOP "
    "MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD "
    "RUB RWF SAR SBD SCR SDG SEK SGD SHP SKK SLE SLL SOS SRD STN SVC SYP SZL THB TJS TMT TND TOP TRY "
    "TTD TWD TZS UAH UGX USD UYU UZS VEF VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZMK ZWD".split()
)
LINE_AMOUNT_TYPES = {"exclusive": "Exclusive", "inclusive": "Inclusive", "notax": "NoTax"}
CREATABLE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED")
POSTED_STATUSES = ("AUTHORISED", "PAID", "VOIDED")  # in the ledger: bound by the lock dates
ALL_STATUSES = ("DRAFT", "SUBMITTED", "DELETED", "AUTHORISED", "PAID", "VOIDED")
# Xero's status transitions for documents that already exist.
TRANSITIONS = {
    "DRAFT": {"DRAFT", "SUBMITTED", "AUTHORISED", "DELETED"},
    "SUBMITTED": {"SUBMITTED", "DRAFT", "AUTHORISED", "DELETED"},
    "AUTHORISED": {"AUTHORISED", "VOIDED"},
    "PAID": {"PAID"},
    "VOIDED": {"VOIDED"},
    "DELETED": {"DELETED"},
}
CONTACT_STATUSES = ("ACTIVE", "ARCHIVED", "GDPRREQUEST")
# The spec's maxLength on Contact fields; xero-python raises when reading longer values.
CONTACT_FIELD_LIMITS = {"FirstName": 255, "LastName": 255, "EmailAddress": 255, "ContactNumber": 50,
                        "AccountNumber": 50}
REFERENCE_LIMIT = 255
URL_LIMIT = 2000
INVALID_URL = "The Url is not a valid URL."
TRACKING_STATUSES = ("ACTIVE", "ARCHIVED", "DELETED")
TRACKING_NAME_LIMIT = 100  # category and option names (the spec's maxLength)
MAX_LINE_TRACKING = 2  # "Any LineItem can have a maximum of 2 <TrackingCategory> elements."
# An organisation has at most 2 ACTIVE tracking categories and 4 in all (ACTIVE and ARCHIVED).
MAX_ACTIVE_TRACKING_CATEGORIES = 2
MAX_TRACKING_CATEGORIES = 4
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HOST_LABEL_RE = re.compile(r"^[^\W_]+(?:-+[^\W_]+)*$")  # letters and digits, inner hyphens


@dataclass(frozen=True)
class DocKind:
    """What differs between invoices and credit notes."""

    name: str  # "invoice" | "credit_note"
    label: str  # used in messages
    id_key: str
    number_key: str
    types: tuple[str, ...]
    numbered_types: tuple[str, ...]  # types whose numbers Xero keeps unique
    number_prefix: str


INVOICE = DocKind("invoice", "Invoice", "InvoiceID", "InvoiceNumber", ("ACCREC", "ACCPAY"), ("ACCREC",), "INV-")
CREDIT_NOTE = DocKind("credit_note", "Credit Note", "CreditNoteID", "CreditNoteNumber",
                      ("ACCRECCREDIT", "ACCPAYCREDIT"), ("ACCRECCREDIT",), "CN-")


@dataclass
class ElementResult:
    """One element of a batch answer: saved (ok) or an echo with errors."""

    ok: bool
    wire: dict[str, Any]
    messages: list[str] = field(default_factory=list)


class NotFound(KeyError):
    """No such record (the API answers 404; the backend's helpers raise it as a KeyError)."""


class OrderError(ValueError):
    """An ``order`` parameter naming no field of the resource, or a bad direction."""


class Ledger:
    """The rules over one tenant's records. Callers hold the backend lock."""

    def __init__(self, tenant: Tenant, clock: Callable[[], float]) -> None:
        self.t = tenant
        self.clock = clock

    # ================================================================ contacts
    def active_contact_named(self, name: str, exclude_id: str | None = None) -> Contact | None:
        key = fold(name)
        for contact in self.t.contacts.values():
            if contact.status == "ACTIVE" and contact.contact_id != exclude_id and fold(contact.name) == key:
                return contact
        return None

    def save_contacts(self, payloads: list[Any], allow_update: bool, path_contact_id: str | None = None) -> list[ElementResult]:
        return [self._save_contact(p, allow_update, path_contact_id) for p in payloads]

    def _save_contact(self, payload: Any, allow_update: bool, path_contact_id: str | None) -> ElementResult:
        if not isinstance(payload, dict):
            return ElementResult(False, _contact_echo({}, ["A contact must be an object."]), ["A contact must be an object."])
        contact_id = path_contact_id or _str(payload.get("ContactID"))
        existing = self.t.contacts.get((contact_id or "").lower()) if contact_id else None
        errors: list[str] = []
        if contact_id and existing is None and (allow_update or path_contact_id):
            errors.append(f"The contact with ContactID {contact_id} could not be found.")
        name = _str(payload.get("Name"))
        if name is not None:
            name = name.strip()
        if existing is None and not name:
            errors.append("The contact name must be specified.")
        status = _str(payload.get("ContactStatus")) or (existing.status if existing else "ACTIVE")
        if status not in CONTACT_STATUSES:
            errors.append(f"The contact status '{status}' is not valid.")
        final_name = name if name else (existing.name if existing else "")
        if name and len(name) > 255:
            errors.append("The contact name must not be more than 255 characters long.")
        for key, limit in CONTACT_FIELD_LIMITS.items():
            value = payload.get(key)
            if isinstance(value, str) and len(value) > limit:
                errors.append(f"{key} must not be more than {limit} characters long.")
        if final_name and status == "ACTIVE" and not errors:
            clash = self.active_contact_named(final_name, exclude_id=existing.contact_id if existing else None)
            if clash is not None:
                errors.append(
                    f"The contact name {final_name} is already assigned to another contact. "
                    "The contact name must be unique across all active contacts."
                )
        if errors:
            return ElementResult(False, _contact_echo(payload, errors, existing), errors)
        contact = existing or Contact(contact_id=new_id(), name=final_name)
        contact.name = final_name
        contact.status = status
        for attr, key in (("email_address", "EmailAddress"), ("first_name", "FirstName"),
                          ("last_name", "LastName"), ("contact_number", "ContactNumber"),
                          ("account_number", "AccountNumber")):
            if key in payload:
                setattr(contact, attr, _str(payload.get(key)))
        contact.updated = self.clock()
        self.t.contacts[contact.contact_id] = contact
        return ElementResult(True, self.render_contact(contact))

    def add_contact(self, name: str, status: str, merged_to: str | None) -> str:
        contact = Contact(contact_id=new_id(), name=name, status=status,
                          merged_to_contact_id=merged_to, updated=self.clock())
        self.t.contacts[contact.contact_id] = contact
        return contact.contact_id

    def find_contacts(self, where: str | None, include_archived: bool, ids: list[str] | None,
                      search_term: str | None) -> list[Contact]:
        predicate = compile_where(where)
        wanted_ids = {i.strip().lower() for i in ids} if ids else None
        term = fold(search_term) if search_term else None
        found = []
        for contact in self.t.contacts.values():
            if wanted_ids is not None:
                if contact.contact_id not in wanted_ids:
                    continue
            elif not include_archived and contact.status == "ARCHIVED":
                continue  # IDs= returns what was asked for, archived or not
            if term and not any(term in fold(v) for v in (contact.name, contact.first_name, contact.last_name,
                                                        contact.contact_number, contact.email_address) if v):
                continue
            if predicate and not predicate(_contact_getter(contact)):
                continue
            found.append(contact)
        return sorted(found, key=lambda c: fold(c.name))

    def render_contact(self, contact: Contact) -> dict[str, Any]:
        wire: dict[str, Any] = {"ContactID": contact.contact_id, "ContactStatus": contact.status, "Name": contact.name}
        if contact.merged_to_contact_id:
            wire["MergedToContactID"] = contact.merged_to_contact_id
        for key, value in (("FirstName", contact.first_name), ("LastName", contact.last_name),
                           ("EmailAddress", contact.email_address), ("ContactNumber", contact.contact_number),
                           ("AccountNumber", contact.account_number)):
            if value is not None:
                wire[key] = value
        wire.update({
            "Addresses": [], "Phones": [], "ContactGroups": [], "ContactPersons": [],
            "UpdatedDateUTC": ms_datetime(contact.updated),
            "IsSupplier": any(d.type in ("ACCPAY", "ACCPAYCREDIT") and d.contact_id == contact.contact_id
                              for d in self.t.documents.values()),
            "IsCustomer": any(d.type in ("ACCREC", "ACCRECCREDIT") and d.contact_id == contact.contact_id
                              for d in self.t.documents.values()),
            "HasAttachments": False,
            "HasValidationErrors": False,
        })
        return wire

    # ================================================================ tracking categories
    def add_tracking_category(self, name: str, options: list[str], status: str) -> str:
        """Set up a category with its options (all ACTIVE), as a user does in
        Xero's settings; Xero's own limits apply."""
        status = status.upper()
        problems = []
        if status not in TRACKING_STATUSES:
            problems.append(f"status must be one of {', '.join(TRACKING_STATUSES)}")
        if not name.strip() or len(name) > TRACKING_NAME_LIMIT:
            problems.append(f"a tracking category name needs 1 to {TRACKING_NAME_LIMIT} characters")
        if any(_same_name(c.name, name) for c in self.t.tracking_categories.values() if c.status != "DELETED"):
            problems.append(f"a tracking category named {name!r} already exists")
        live = [c for c in self.t.tracking_categories.values() if c.status in ("ACTIVE", "ARCHIVED")]
        if status == "ACTIVE" and sum(c.status == "ACTIVE" for c in live) >= MAX_ACTIVE_TRACKING_CATEGORIES:
            problems.append(f"Xero allows at most {MAX_ACTIVE_TRACKING_CATEGORIES} ACTIVE tracking categories")
        if status != "DELETED" and len(live) >= MAX_TRACKING_CATEGORIES:
            problems.append(f"Xero allows at most {MAX_TRACKING_CATEGORIES} tracking categories (ACTIVE and ARCHIVED)")
        for i, option in enumerate(options):
            if not option.strip() or len(option) > TRACKING_NAME_LIMIT:
                problems.append(f"option {option!r} needs 1 to {TRACKING_NAME_LIMIT} characters")
            if any(_same_name(other, option) for other in options[:i]):
                problems.append(f"option {option!r} is given twice")
        if problems:
            raise ValueError("; ".join(problems))
        category = TrackingCategory(new_id(), name, status, [TrackingOption(new_id(), o) for o in options])
        self.t.tracking_categories[category.category_id] = category
        return category.category_id

    def set_tracking_option_status(self, category_id: str, option: str, status: str) -> str:
        category = self.t.tracking_categories.get(category_id.lower())
        if category is None:
            raise KeyError(f"unknown tracking category {category_id}")
        found = next((o for o in category.options if _same_name(o.name, option)), None)
        if found is None:
            raise KeyError(f"tracking category {category.name!r} has no option {option!r}")
        if status.upper() not in TRACKING_STATUSES:
            raise ValueError(f"status must be one of {', '.join(TRACKING_STATUSES)}")
        found.status = status.upper()
        return found.option_id

    def find_tracking_categories(self, include_archived: bool, where: str | None = None,
                                 category_id: str | None = None) -> list[TrackingCategory]:
        """ACTIVE categories, or ARCHIVED too; one asked for by ID whatever its status."""
        predicate = compile_where(where)
        found = []
        for category in self.t.tracking_categories.values():
            if category_id is not None:
                if category.category_id != category_id.lower():
                    continue
            elif category.status == "DELETED" or (category.status == "ARCHIVED" and not include_archived):
                continue
            if predicate and not predicate(_tracking_getter(category)):
                continue
            found.append(category)
        return sorted(found, key=lambda c: c.name.casefold())

    @staticmethod
    def render_tracking_category(category: TrackingCategory, include_archived: bool) -> dict[str, Any]:
        shown = [o for o in category.options
                 if o.status == "ACTIVE" or (o.status == "ARCHIVED" and include_archived)]
        return {"TrackingCategoryID": category.category_id, "Name": category.name, "Status": category.status,
                "Options": [{"TrackingOptionID": o.option_id, "Name": o.name, "Status": o.status}
                            for o in sorted(shown, key=lambda o: o.name.casefold())]}

    # ================================================================ documents
    def save_documents(self, kind: DocKind, payloads: list[Any], allow_update: bool, unitdp: int,
                       created_by: str | None = None) -> list[ElementResult]:
        """``created_by``: the client_id of the app whose call this is (None: keyed in by hand);
        a document keeps the app that created it through later updates."""
        return [self._save_document(kind, p, allow_update, unitdp, created_by) for p in payloads]

    def _save_document(self, kind: DocKind, payload: Any, allow_update: bool, unitdp: int,
                       created_by: str | None = None) -> ElementResult:
        if not isinstance(payload, dict):
            msg = f"An {kind.label} must be an object."
            return ElementResult(False, self._echo(kind, {}, [msg], unitdp), [msg])
        existing = self._existing_for(kind, payload, allow_update)
        errors: list[str] = []
        if isinstance(existing, str):  # an error message instead of a document
            errors.append(existing)
            existing = None
        draft = None if errors else self._build(kind, payload, existing, unitdp, errors, created_by)
        if errors or draft is None:
            return ElementResult(False, self._echo(kind, payload, errors, unitdp, existing), errors)
        if existing is None and draft.number is None and draft.type in kind.numbered_types:
            draft.number = self._next_number(kind)
        self._store(draft)
        self._settle(draft)
        return ElementResult(True, self.render_document(draft, unitdp))

    def _existing_for(self, kind: DocKind, payload: dict[str, Any], allow_update: bool) -> Document | str | None:
        """POST updates by ID, or by number for a numbered type; PUT only creates."""
        doc_id = _str(payload.get(kind.id_key))
        if doc_id and doc_id != ZERO_UUID:
            doc = self.t.documents.get(doc_id.lower())
            if doc is None or doc.kind != kind.name:
                return f"{kind.label} could not be found. {kind.id_key}: {doc_id}"
            if not allow_update:
                return f"An existing {kind.label} cannot be updated with PUT; use POST."
            return doc
        number = _str(payload.get(kind.number_key))
        if allow_update and number:
            doc_type = _str(payload.get("Type"))
            match = self._by_number(kind, number)
            if match is not None and (doc_type is None or doc_type == match.type):
                return match
        return None

    def _store(self, doc: Document) -> None:
        """Keep a new or updated document, and the index of numbers with it."""
        previous = self.t.documents.get(doc.doc_id)
        if previous is not None and previous.number is not None:
            self.t.numbers.get((previous.kind, fold(previous.number)), {}).pop(previous.doc_id, None)
        self.t.documents[doc.doc_id] = doc
        if doc.number is not None:
            self.t.numbers.setdefault((doc.kind, fold(doc.number)), {})[doc.doc_id] = None

    def _by_number(self, kind: DocKind, number: str, exclude_id: str | None = None) -> Document | None:
        for doc_id in self.t.numbers.get((kind.name, fold(number)), {}):
            doc = self.t.documents[doc_id]
            if doc.type in kind.numbered_types and doc.doc_id != exclude_id:
                return doc
        return None

    def _next_number(self, kind: DocKind) -> str:
        while True:
            if kind is INVOICE:
                self.t.invoice_seq += 1
                candidate = f"{kind.number_prefix}{self.t.invoice_seq:04d}"
            else:
                self.t.credit_note_seq += 1
                candidate = f"{kind.number_prefix}{self.t.credit_note_seq:04d}"
            if self._by_number(kind, candidate) is None:
                return candidate

    def _build(self, kind: DocKind, p: dict[str, Any], base: Document | None, unitdp: int,
               errors: list[str], created_by: str | None = None) -> Document | None:
        """Validate a payload (merged over ``base`` for updates) into a new
        Document; append every problem to ``errors``."""
        doc_type = _str(p.get("Type")) if "Type" in p else (base.type if base else None)
        if not doc_type:
            errors.append(f"{kind.label} Type must be specified.")
        elif doc_type not in kind.types:
            errors.append(f"'{doc_type}' is not a valid {kind.label} Type.")

        status = self._status(kind, p, base, errors)
        contact_id = self._contact(p, base, errors)

        lat_raw = _str(p.get("LineAmountTypes")) if "LineAmountTypes" in p else (base.line_amount_types if base else "Exclusive")
        line_amount_types = LINE_AMOUNT_TYPES.get((lat_raw or "Exclusive").lower())
        if line_amount_types is None:
            errors.append(f"LineAmountTypes '{lat_raw}' is not valid; use Exclusive, Inclusive or NoTax.")
            line_amount_types = "Exclusive"

        currency = (_str(p.get("CurrencyCode")) or (base.currency_code if base else self.t.base_currency)).upper()
        if currency not in self.t.currencies:
            errors.append(f"Organisation is not subscribed to currency {currency}")
        rate = to_decimal(p.get("CurrencyRate")) or (base.currency_rate if base else Decimal("1.000000"))

        date = self._date(p, "Date", base.date if base else utc_date(self.clock()), errors)
        due_date = self._date(p, "DueDate", base.due_date if base else None, errors)
        if date and due_date and due_date < date:
            errors.append("Due Date must not be earlier than the Date.")

        number = _str(p.get(kind.number_key)) if kind.number_key in p else (base.number if base else None)
        if number is not None:
            number = number.strip() or None
        if number is not None and len(number) > 255:
            errors.append(f"{kind.label} Number must be no more than 255 characters long.")
        elif number is not None and doc_type in kind.numbered_types and \
                self._by_number(kind, number, exclude_id=base.doc_id if base else None) is not None:
            errors.append(f"{kind.label} # must be unique.")

        reference = _str(p.get("Reference")) if "Reference" in p else (base.reference if base else None)
        if reference is not None and len(reference) > REFERENCE_LIMIT:
            errors.append(f"Reference must be no more than {REFERENCE_LIMIT} characters long.")
        # The spec's CreditNote has no Url: Xero ignores one sent on a credit note.
        url = self._url(p, base, errors) if kind is INVOICE else None
        if "LineItems" in p:
            lines = self._lines(p.get("LineItems"), base, line_amount_types, status, unitdp, errors)
        elif base is not None:
            lines = self._recompute(base.line_items, line_amount_types, errors)
        else:
            lines = []
        if not lines and not any("line item" in e for e in errors):
            errors.append(f"{kind.label} must contain at least one line item.")

        if base is not None and status is not None:
            self._check_edit(kind, base, p, status, errors)
        posted_on = base.date if base is not None and base.status in POSTED_STATUSES else None
        if status in POSTED_STATUSES or posted_on is not None:  # a posting, or an edit of one
            errors.extend(self._lock_date_errors(date, posted_on))
        if errors or status is None or doc_type is None or contact_id is None or date is None:
            return None

        sub_total, total_tax, total = _totals(lines, line_amount_types)
        doc = Document(
            kind=kind.name, doc_id=base.doc_id if base else new_id(), type=doc_type, contact_id=contact_id,
            number=number, reference=reference, date=date, due_date=due_date, status=status,
            line_amount_types=line_amount_types, currency_code=currency, currency_rate=rate,
            line_items=lines, sub_total=sub_total, total_tax=total_tax, total=total, updated=self.clock(),
            url=url, created_by=base.created_by if base else created_by,
        )
        if base is not None:  # money already applied survives an edit
            doc.amount_paid, doc.amount_credited = base.amount_paid, base.amount_credited
            doc.allocated, doc.allocation_ids = base.allocated, base.allocation_ids
            doc.fully_paid_on, doc.payment_ids = base.fully_paid_on, base.payment_ids
        return doc

    def _status(self, kind: DocKind, p: dict[str, Any], base: Document | None, errors: list[str]) -> str | None:
        status = _str(p.get("Status")) or (base.status if base else "DRAFT")
        status = status.upper()
        if base is None:
            if status not in CREATABLE_STATUSES:
                errors.append(f"{kind.label} not of valid status for creation")
                return None
        elif status not in TRANSITIONS.get(base.status, set()):
            errors.append(f"{kind.label} not of valid status for modification")
            return None
        return status

    def _contact(self, p: dict[str, Any], base: Document | None, errors: list[str]) -> str | None:
        if "Contact" not in p and base is not None:
            return base.contact_id
        raw = p.get("Contact")
        contact_id = _str(raw.get("ContactID")) if isinstance(raw, dict) else None
        if not contact_id:
            errors.append("A Contact must be specified for this type of transaction")
            return None
        contact = self.t.contacts.get(contact_id.lower())
        if contact is None:
            errors.append(f"The contact with ContactID {contact_id} could not be found.")
            return None
        if contact.status != "ACTIVE" and (base is None or base.contact_id != contact.contact_id):
            errors.append("Unable to assign an Archived contact.")
            return None
        return contact.contact_id

    @staticmethod
    def _url(p: dict[str, Any], base: Document | None, errors: list[str]) -> str | None:
        """The link back to the source document, kept verbatim; Xero refuses
        one that is not an absolute http(s) URL, or longer than 2000."""
        if "Url" not in p:
            return base.url if base else None
        url = p.get("Url")
        if url is None or url == "":
            return None
        if isinstance(url, str) and len(url) > URL_LIMIT:
            errors.append(f"Url must be no more than {URL_LIMIT} characters long.")
            return None
        if not isinstance(url, str) or not _is_absolute_http_url(url):
            errors.append(INVALID_URL)
            return None
        return url

    def _date(self, p: dict[str, Any], key: str, default: dt.date | None, errors: list[str]) -> dt.date | None:
        if key not in p or p.get(key) in (None, ""):
            return default
        parsed = parse_date(p.get(key))
        if parsed is None:
            errors.append(f"The {key} '{p.get(key)}' is not a valid date.")
        return parsed

    def _lines(self, raw: Any, base: Document | None, lat: str, status: str | None, unitdp: int,
               errors: list[str]) -> list[LineItem]:
        if not isinstance(raw, list):
            errors.append("LineItems must be a list.")
            return []
        known_ids = {li.line_item_id for li in base.line_items} if base else set()
        lines = []
        for item in raw:
            if not isinstance(item, dict):
                errors.append("Each line item must be an object.")
                continue
            line = self._line(item, lat, status, unitdp, errors)
            if line is not None:
                given_id = (_str(item.get("LineItemID")) or "").lower()
                if given_id in known_ids:
                    line.line_item_id = given_id  # an edit keeps the line's identity
                lines.append(line)
        return lines

    def _line(self, item: dict[str, Any], lat: str, status: str | None, unitdp: int,
              errors: list[str]) -> LineItem | None:
        description = _str(item.get("Description"))
        if description is not None and len(description) > 4000:
            errors.append("Description must be no more than 4000 characters long.")
        quantity = to_decimal(item.get("Quantity"))
        quantity = Decimal("1") if quantity is None else round_dp(quantity, 4)
        unit = to_decimal(item.get("UnitAmount"))
        given_line_amount = to_decimal(item.get("LineAmount"))
        if unit is None and given_line_amount is not None and quantity:
            unit = given_line_amount / quantity
        # Xero rounds the unit price first (4 dp only when the caller opts in).
        unit = round_dp(unit if unit is not None else Decimal("0"), 4 if unitdp == 4 else 2)
        discount = to_decimal(item.get("DiscountRate"))
        gross = quantity * unit
        line_amount = round2(gross * (Decimal(100) - discount) / Decimal(100) if discount else gross)

        code = _str(item.get("AccountCode"))
        account = self.t.accounts.get(code) if code else None
        if code and (account is None or account.status != "ACTIVE"):
            errors.append(f"Account code '{code}' is not a valid code for this document.")
        elif not code and status in ("SUBMITTED", "AUTHORISED"):
            errors.append("An account code must be specified on every line item of an approved document.")
        tax_type = _str(item.get("TaxType")) or (account.tax_type if account else None)
        if tax_type and tax_type not in self.t.tax_rates:
            errors.append(f"The TaxType code '{tax_type}' does not exist or cannot be used with this type of transaction.")
            tax_type = None
        tracking = self._line_tracking(item.get("Tracking"), errors)
        line = LineItem(
            line_item_id=new_id(), description=description, quantity=quantity, unit_amount=unit,
            account_code=code, tax_type=tax_type, line_amount=line_amount, tax_amount=Decimal("0.00"),
            item_code=_str(item.get("ItemCode")), discount_rate=discount, tracking=tracking,
        )
        line.tax_amount = self._tax(line, lat)
        return line

    def _line_tracking(self, raw: Any, errors: list[str]) -> tuple[LineTracking, ...]:
        """A line's ``Tracking``: each entry names an ACTIVE category (by
        TrackingCategoryID, else by Name, case-insensitively) and one of its
        ACTIVE options (by TrackingOptionID, else by Option); at most two
        categories, each once. Saved with Xero's IDs and spelling."""
        if raw is None:
            return ()
        if not isinstance(raw, list):
            errors.append("Tracking must be a list of tracking categories.")
            return ()
        entries = [e for e in raw if not (isinstance(e, dict) and not any(
            _text(e.get(k)) for k in ("Name", "Option", "TrackingCategoryID", "TrackingOptionID")))]
        if len(entries) > MAX_LINE_TRACKING:
            errors.append(f"A line item cannot have more than {MAX_LINE_TRACKING} tracking categories.")
            return ()
        chosen: list[LineTracking] = []
        for entry in entries:
            if not isinstance(entry, dict):
                errors.append("Each tracking category must be an object.")
                continue
            choice = self._tracking_choice(entry, errors)
            if choice is None:
                continue
            if any(c.category_id == choice.category_id for c in chosen):
                errors.append(f"The tracking category '{choice.name}' can only be used once on a line item.")
                continue
            chosen.append(choice)
        return tuple(chosen)

    def _tracking_choice(self, entry: dict[str, Any], errors: list[str]) -> LineTracking | None:
        name, option = _text(entry.get("Name")), _text(entry.get("Option"))
        category_id, option_id = _text(entry.get("TrackingCategoryID")), _text(entry.get("TrackingOptionID"))
        too_long = False
        if name is not None and len(name) > TRACKING_NAME_LIMIT:
            errors.append(f"Tracking category name must be no more than {TRACKING_NAME_LIMIT} characters long.")
            too_long = True
        if option is not None and len(option) > TRACKING_NAME_LIMIT:
            errors.append(f"Tracking option name must be no more than {TRACKING_NAME_LIMIT} characters long.")
            too_long = True
        if too_long:
            return None
        category_label, option_label = name or category_id, option or option_id
        if option_label is None:
            errors.append(f"A tracking option must be specified for the tracking category '{category_label}'.")
            return None
        if category_label is None:
            errors.append(f"A tracking category must be specified for the tracking option '{option_label}'.")
            return None
        if category_id is not None:
            category = self.t.tracking_categories.get(category_id.lower())
        else:
            category = next((c for c in self.t.tracking_categories.values() if _same_name(c.name, name)), None)
        if category is None or category.status != "ACTIVE":
            what = f"the name '{name}'" if category_id is None else f"the TrackingCategoryID '{category_id}'"
            errors.append(f"There is no ACTIVE tracking category with {what}")
            return None
        if option_id is not None:
            found = next((o for o in category.options if o.option_id == option_id.lower()), None)
        else:
            found = next((o for o in category.options if _same_name(o.name, option)), None)
        if found is None or found.status != "ACTIVE":
            what = f"the name '{option}'" if option_id is None else f"the TrackingOptionID '{option_id}'"
            errors.append(f"There is no ACTIVE tracking option with {what} in the tracking category '{category.name}'")
            return None
        return LineTracking(category.category_id, found.option_id, category.name, found.name)

    def _tax(self, line: LineItem, lat: str) -> Decimal:
        """Per-line tax rounded to 2 dp, as Xero computes it."""
        if lat == "NoTax" or not line.tax_type:
            return Decimal("0.00")
        rate = self.t.tax_rates[line.tax_type].rate / Decimal(100)
        if lat == "Inclusive":
            return round2(line.line_amount - line.line_amount / (Decimal(1) + rate))
        return round2(line.line_amount * rate)

    def _recompute(self, lines: list[LineItem], lat: str, errors: list[str]) -> list[LineItem]:
        copies = []
        for old in lines:
            line = LineItem(**vars(old))
            if line.tax_type and line.tax_type not in self.t.tax_rates:
                errors.append(f"The TaxType code '{line.tax_type}' does not exist or cannot be used with this type of transaction.")
                continue
            line.tax_amount = self._tax(line, lat)
            copies.append(line)
        return copies

    def _check_edit(self, kind: DocKind, base: Document, p: dict[str, Any], status: str, errors: list[str]) -> None:
        """Only drafts are freely editable; approved documents may only change
        status (e.g. AUTHORISED -> VOIDED) and not once money is applied."""
        money_applied = base.amount_paid > 0 or base.amount_credited > 0 or base.allocated > 0
        content_keys = {"LineItems", "Contact", "CurrencyCode", "LineAmountTypes", "Date", "DueDate"}
        editing_content = any(k in p for k in content_keys)
        if base.status in ("AUTHORISED", "PAID") and money_applied and (editing_content or status == "VOIDED"):
            errors.append("This document cannot be edited as it has a payment or credit note allocated to it.")
        elif base.status in ("PAID", "VOIDED", "DELETED") and editing_content:
            errors.append(f"{kind.label} not of valid status for modification")

    def _lock_date_errors(self, *dates: dt.date | None) -> list[str]:
        """Xero's refusal of a posting dated on or before a lock date (Xero: "users can't add or edit
        transactions if the transaction date is on or before the lock date"; drafts and submitted
        documents may still be saved). An app is a standard user, never an adviser: the period lock
        date binds it as the end of year lock date does, each refusing with its own message (wording
        as integrators report it, e.g. xeroizer issue #92 and Emersion's knowledge base: "The document
        date cannot be before the period lock date, currently set at 30-Nov-2018")."""
        errors = []
        for name, lock in (("period lock date", self.t.period_lock_date),
                           ("end of year lock date", self.t.end_of_year_lock_date)):
            if lock is not None and any(d is not None and d <= lock for d in dates):
                errors.append(f"The document date cannot be before the {name}, currently set at {_xero_day(lock)}")
        return errors

    def _settle(self, doc: Document, on: dt.date | None = None) -> None:
        """AUTHORISED with nothing left to pay / allocate becomes PAID, fully paid on the date of
        the payment or allocation that settled it (``on``; today when not given)."""
        left = doc.amount_due if doc.kind == "invoice" else doc.remaining_credit
        if doc.status == "AUTHORISED" and left <= 0:
            doc.status = "PAID"
            doc.fully_paid_on = on or utc_date(self.clock())

    def _unsettle(self, doc: Document) -> None:
        """PAID with something owed again (a payment deleted, an allocation gone) is AUTHORISED again."""
        left = doc.amount_due if doc.kind == "invoice" else doc.remaining_credit
        if doc.status == "PAID" and left > 0:
            doc.status = "AUTHORISED"
            doc.fully_paid_on = None

    def find_documents(self, kind: DocKind, where: str | None = None, ids: list[str] | None = None,
                       numbers: list[str] | None = None, contact_ids: list[str] | None = None,
                       statuses: list[str] | None = None, created_by: str | None = None,
                       search_term: str | None = None) -> list[Document]:
        """Every status (VOIDED and DELETED included, as Xero lists them), oldest change first.
        ``created_by``: only documents the app with this client_id created (createdByMyApp);
        ``search_term``: case- and accent-insensitive text in the number or Reference."""
        cache = self.t.list_cache
        if cache is not None:
            key = (kind.name, where, tuple(ids or ()), tuple(numbers or ()), tuple(contact_ids or ()),
                   tuple(statuses or ()), created_by, search_term)
            state = self._list_state()
            kept = cache.get(key)
            if kept is None or kept[0] != state:
                cache.clear()
                kept = cache[key] = (state, self._find_documents(kind, where, ids, numbers, contact_ids, statuses,
                                                                 created_by, search_term))
            return list(kept[1])
        return self._find_documents(kind, where, ids, numbers, contact_ids, statuses, created_by, search_term)

    def _list_state(self) -> tuple:
        """What a cached list depends on: a change to a document or a Contact moves its UpdatedDateUTC on, to the
        clock's now (the newest), and a document added or forgotten changes the count (SandboxBackend.cache_lists
        holds only while the clock moves forward)."""
        documents = self.t.documents.values()
        return (len(self.t.documents), max((d.updated for d in documents), default=0.0),
                len(self.t.contacts), max((c.updated for c in self.t.contacts.values()), default=0.0))

    def _find_documents(self, kind: DocKind, where: str | None, ids: list[str] | None, numbers: list[str] | None,
                        contact_ids: list[str] | None, statuses: list[str] | None, created_by: str | None,
                        search_term: str | None) -> list[Document]:
        predicate = compile_where(where)
        id_set = {i.strip().lower() for i in ids} if ids else None
        number_set = {fold(n) for n in numbers} if numbers else None
        contact_set = {c.strip().lower() for c in contact_ids} if contact_ids else None
        status_set = {s.strip().upper() for s in statuses} if statuses else None
        term = fold(search_term) if search_term and search_term.strip() else None
        found = []
        for doc in self.t.documents.values():
            if doc.kind != kind.name:
                continue
            if id_set is not None and doc.doc_id not in id_set:
                continue
            if number_set is not None and (doc.number is None or fold(doc.number) not in number_set):
                continue
            if contact_set is not None and doc.contact_id not in contact_set:
                continue
            if status_set is not None and doc.status not in status_set:
                continue
            if created_by is not None and doc.created_by != created_by:
                continue
            if term is not None and not any(term in fold(v) for v in (doc.number, doc.reference) if v):
                continue
            if predicate and not predicate(self._document_getter(kind, doc)):
                continue
            found.append(doc)
        return sorted(found, key=lambda d: (d.updated, d.doc_id))

    def document(self, kind: DocKind, doc_id: str) -> Document:
        doc = self.t.documents.get(doc_id.lower())
        if doc is None or doc.kind != kind.name:
            raise NotFound(doc_id)
        return doc

    def _document_values(self, kind: DocKind, doc: Document) -> dict[str, Any]:
        contact = self.t.contacts.get(doc.contact_id)
        return {
            "type": doc.type, "status": doc.status, kind.number_key.lower(): doc.number,
            kind.id_key.lower(): doc.doc_id, "reference": doc.reference, "currencycode": doc.currency_code,
            "contact.contactid": doc.contact_id, "contact.name": contact.name if contact else None,
            "date": doc.date, "duedate": doc.due_date, "total": doc.total, "subtotal": doc.sub_total,
            "totaltax": doc.total_tax, "amountdue": doc.amount_due, "remainingcredit": doc.remaining_credit,
            "amountpaid": doc.amount_paid, "amountcredited": doc.amount_credited,
            "updateddateutc": _instant(doc.updated), "fullypaidondate": doc.fully_paid_on,
        }

    def _document_getter(self, kind: DocKind, doc: Document) -> Callable[[str], Any]:
        values = self._document_values(kind, doc)
        return lambda name: values.get(name.lower())

    def order_documents(self, kind: DocKind, docs: list[Document], order: str | None) -> list[Document]:
        """``order=Field [ASC|DESC][, Field …]`` over the fields ``where`` knows."""
        if order is not None and order.split() in (["UpdatedDateUTC"], ["UpdatedDateUTC", "ASC"]):
            return docs  # find_documents' own order (by the exact instant, then the id): the same, without a sort
        fields = {k.lower() for k in DOCUMENT_ORDER_FIELDS} | {kind.number_key.lower(), kind.id_key.lower()}
        return order_by(docs, order, fields, lambda d: self._document_values(kind, d), kind.id_key[:-2])

    # ================================================================ rendering
    # What summaryOnly=true leaves out of an invoice: the line items and the lists that need
    # other records (payments, allocations, prepayments, overpayments). Xero documents only
    # "lightweight fields, excluding computation-heavy fields"; the amounts stay.
    SUMMARY_OMITS = ("LineItems", "Payments", "CreditNotes", "Prepayments", "Overpayments")

    def render_document(self, doc: Document, unitdp: int = 2, summary_only: bool = False) -> dict[str, Any]:
        kind = INVOICE if doc.kind == "invoice" else CREDIT_NOTE
        contact = self.t.contacts.get(doc.contact_id)
        wire: dict[str, Any] = {"Type": doc.type, kind.id_key: doc.doc_id}
        if doc.number is not None:
            wire[kind.number_key] = doc.number
        if doc.reference is not None:
            wire["Reference"] = doc.reference
        wire["Contact"] = {"ContactID": doc.contact_id, "Name": contact.name if contact else ""}
        wire["Date"] = ms_date(doc.date)
        if doc.due_date is not None:
            wire["DueDate"] = ms_date(doc.due_date)
        wire.update({
            "Status": doc.status,
            "LineAmountTypes": doc.line_amount_types,
            "LineItems": [_render_line(li, unitdp) for li in doc.line_items],
            "SubTotal": doc.sub_total,
            "TotalTax": doc.total_tax,
            "Total": doc.total,
            "UpdatedDateUTC": ms_datetime(doc.updated),
            "CurrencyCode": doc.currency_code,
            "CurrencyRate": doc.currency_rate,
            "HasAttachments": False,
            "HasErrors": False,
        })
        if doc.url is not None:
            wire["Url"] = doc.url
        if doc.fully_paid_on is not None and doc.status == "PAID":
            wire["FullyPaidOnDate"] = ms_date(doc.fully_paid_on)
        allocations = [self.t.allocations[a] for a in doc.allocation_ids if a in self.t.allocations]
        if kind is INVOICE:
            wire.update({
                "AmountDue": doc.amount_due, "AmountPaid": doc.amount_paid, "AmountCredited": doc.amount_credited,
                "IsDiscounted": any(li.discount_rate for li in doc.line_items), "SentToContact": False,
                "Payments": [self._payment_summary(p) for p in self._payments_of(doc) if p.status == "AUTHORISED"],
                "Prepayments": [], "Overpayments": [],
                "CreditNotes": [self._credit_note_summary(a) for a in allocations],
            })
            if summary_only:
                for key in self.SUMMARY_OMITS:
                    wire.pop(key, None)
        else:
            wire.update({
                "RemainingCredit": doc.remaining_credit, "Payments": [],
                "Allocations": [self._allocation_summary(a) for a in allocations],
            })
        return wire

    def _credit_note_summary(self, allocation: AllocationRecord) -> dict[str, Any]:
        cn = self.t.documents[allocation.credit_note_id]
        summary: dict[str, Any] = {"CreditNoteID": cn.doc_id}
        if cn.number is not None:
            summary["CreditNoteNumber"] = cn.number
        summary.update({"Date": ms_date(allocation.date), "Total": cn.total, "AppliedAmount": allocation.amount})
        return summary

    def _allocation_summary(self, allocation: AllocationRecord) -> dict[str, Any]:
        invoice = self.t.documents[allocation.invoice_id]
        ref: dict[str, Any] = {"InvoiceID": invoice.doc_id}
        if invoice.number is not None:
            ref["InvoiceNumber"] = invoice.number
        return {"AllocationID": allocation.allocation_id, "Amount": allocation.amount,
                "Date": ms_date(allocation.date), "Invoice": ref}

    def _echo(self, kind: DocKind, p: dict[str, Any], errors: list[str], unitdp: int,
              existing: Document | None = None) -> dict[str, Any]:
        """The element as Xero echoes a failed one: what was sent, made safe
        for xero-python (valid enums only, Microsoft dates), plus the errors."""
        wire: dict[str, Any] = {}
        if _str(p.get("Type")) in kind.types:
            wire["Type"] = p["Type"]
        wire[kind.id_key] = existing.doc_id if existing else ZERO_UUID
        for key in (kind.number_key, "Reference"):
            if isinstance(p.get(key), str) and len(p[key]) <= 255:  # the SDK refuses longer numbers
                wire[key] = p[key]
        raw_contact = p.get("Contact")
        if isinstance(raw_contact, dict):
            contact_wire: dict[str, Any] = {}
            for key in ("ContactID", "Name"):
                if isinstance(raw_contact.get(key), str) and len(raw_contact[key]) <= 255:
                    contact_wire[key] = raw_contact[key]
            wire["Contact"] = contact_wire
        for key in ("Date", "DueDate"):
            parsed = parse_date(p.get(key))
            if parsed is not None:
                wire[key] = ms_date(parsed)
        status = _str(p.get("Status"))
        if status in ALL_STATUSES:
            wire["Status"] = status
        lat = LINE_AMOUNT_TYPES.get((_str(p.get("LineAmountTypes")) or "").lower())
        if lat:
            wire["LineAmountTypes"] = lat
        currency = (_str(p.get("CurrencyCode")) or "").upper()
        if currency in KNOWN_CURRENCIES:
            wire["CurrencyCode"] = currency
        if isinstance(p.get("LineItems"), list):
            wire["LineItems"] = [_echo_line(li, unitdp) for li in p["LineItems"] if isinstance(li, dict)]
        wire.update({"HasAttachments": False, "HasErrors": True,
                     "ValidationErrors": [{"Message": m} for m in errors]})
        if kind is INVOICE:
            wire.update({"IsDiscounted": False, "Payments": [], "Prepayments": [], "Overpayments": [], "CreditNotes": []})
        else:
            wire.update({"Payments": [], "Allocations": []})
        return wire

    # ================================================================ payments
    def pay(self, invoice_id: str, amount: Decimal, date: dt.date | None = None, reference: str | None = None,
            account_code: str | None = None) -> str:
        """A payment received (ACCREC) or made (ACCPAY) against an AUTHORISED invoice, for up
        to its AmountDue, into a bank account (the first ACTIVE one unless ``account_code``);
        returns its PaymentID. Xero's messages when it refuses."""
        invoice = self.document(INVOICE, invoice_id)
        errors = []
        if invoice.status != "AUTHORISED":
            errors.append("Payments can only be made against Authorised documents")
        if amount <= 0:
            errors.append("Payment amounts must be positive amounts")
        elif invoice.status == "AUTHORISED" and round2(amount) > invoice.amount_due:
            errors.append("Payment amount exceeds the amount outstanding on this document")
        if account_code is not None:
            account = self.t.accounts.get(account_code)
            if account is None or account.type != "BANK" or account.status != "ACTIVE":
                errors.append(f"Account code '{account_code}' is not an active bank account.")
        else:
            account_code = next((a.code for a in self.t.accounts.values()
                                 if a.type == "BANK" and a.status == "ACTIVE"), None)
        if errors:
            raise ValueError("; ".join(errors))
        now = self.clock()
        payment = PaymentRecord(
            payment_id=new_id(), invoice_id=invoice.doc_id, amount=round2(amount), date=date or utc_date(now),
            updated=now, reference=reference, account_code=account_code, currency_rate=invoice.currency_rate)
        self.t.payments[payment.payment_id] = payment
        invoice.payment_ids.append(payment.payment_id)
        invoice.amount_paid += payment.amount
        invoice.updated = now
        self._settle(invoice, payment.date)
        return payment.payment_id

    def delete_payment(self, payment_id: str) -> None:
        """Status DELETED (the record stays, as in Xero); the invoice owes the amount again and,
        if it was PAID, is AUTHORISED again without a FullyPaidOnDate."""
        payment = self.t.payments.get(payment_id.lower())
        if payment is None:
            raise NotFound(payment_id)
        if payment.status != "AUTHORISED":
            raise ValueError("Payment not of valid status for modification")
        now = self.clock()
        payment.status, payment.updated = "DELETED", now
        invoice = self.t.documents.get(payment.invoice_id)
        if invoice is not None:
            invoice.amount_paid -= payment.amount
            invoice.updated = now
            self._unsettle(invoice)

    def _payments_of(self, doc: Document) -> list[PaymentRecord]:
        return [self.t.payments[p] for p in doc.payment_ids if p in self.t.payments]

    def find_payments(self, where: str | None = None, payment_id: str | None = None) -> list[PaymentRecord]:
        """Every payment, DELETED ones included, oldest change first."""
        predicate = compile_where(where)
        found = []
        for payment in self.t.payments.values():
            if payment_id is not None and payment.payment_id != payment_id.lower():
                continue
            if predicate and not predicate(self._payment_getter(payment)):
                continue
            found.append(payment)
        return sorted(found, key=lambda p: (p.updated, p.payment_id))

    def _payment_values(self, payment: PaymentRecord) -> dict[str, Any]:
        invoice = self.t.documents.get(payment.invoice_id)
        contact = self.t.contacts.get(invoice.contact_id) if invoice else None
        account = self.t.accounts.get(payment.account_code) if payment.account_code else None
        return {
            "paymentid": payment.payment_id, "status": payment.status, "amount": payment.amount,
            "bankamount": self._bank_amount(payment), "date": payment.date, "reference": payment.reference,
            "paymenttype": self._payment_type(invoice), "isreconciled": payment.is_reconciled,
            "currencyrate": payment.currency_rate, "updateddateutc": _instant(payment.updated),
            "invoice.invoiceid": payment.invoice_id, "invoice.invoicenumber": invoice.number if invoice else None,
            "invoice.type": invoice.type if invoice else None,
            "invoice.contact.contactid": invoice.contact_id if invoice else None,
            "invoice.contact.name": contact.name if contact else None,
            "account.code": payment.account_code, "account.accountid": account.account_id if account else None,
        }

    def _payment_getter(self, payment: PaymentRecord) -> Callable[[str], Any]:
        values = self._payment_values(payment)
        return lambda name: values.get(name.lower())

    def order_payments(self, payments: list[PaymentRecord], order: str | None) -> list[PaymentRecord]:
        return order_by(payments, order, set(PAYMENT_ORDER_FIELDS), self._payment_values, "Payment")

    @staticmethod
    def _payment_type(invoice: Document | None) -> str:
        return "ACCPAYPAYMENT" if invoice is not None and invoice.type == "ACCPAY" else "ACCRECPAYMENT"

    @staticmethod
    def _bank_amount(payment: PaymentRecord) -> Decimal:
        rate = payment.currency_rate or Decimal(1)
        return round2(payment.amount / rate)

    def render_payment(self, payment: PaymentRecord) -> dict[str, Any]:
        """A payment as GET /Payments answers it, with a summary of its invoice as it is now."""
        invoice = self.t.documents.get(payment.invoice_id)
        account = self.t.accounts.get(payment.account_code) if payment.account_code else None
        wire: dict[str, Any] = {"PaymentID": payment.payment_id, "Date": ms_date(payment.date),
                                "BankAmount": self._bank_amount(payment), "Amount": payment.amount}
        if payment.reference is not None:
            wire["Reference"] = payment.reference
        wire.update({
            "CurrencyRate": payment.currency_rate, "PaymentType": self._payment_type(invoice),
            "Status": payment.status, "UpdatedDateUTC": ms_datetime(payment.updated),
            "HasAccount": account is not None, "IsReconciled": payment.is_reconciled,
        })
        if account is not None:
            wire["Account"] = {"AccountID": account.account_id, "Code": account.code, "Name": account.name}
        if invoice is not None:
            wire["Invoice"] = self._invoice_summary(invoice)
        wire["HasValidationErrors"] = False
        return wire

    def _payment_summary(self, payment: PaymentRecord) -> dict[str, Any]:
        """A payment as an invoice's Payments[] lists it."""
        wire: dict[str, Any] = {"PaymentID": payment.payment_id, "Date": ms_date(payment.date),
                                "Amount": payment.amount}
        if payment.reference is not None:
            wire["Reference"] = payment.reference
        wire.update({"CurrencyRate": payment.currency_rate, "HasAccount": payment.account_code is not None,
                     "HasValidationErrors": False})
        return wire

    def _invoice_summary(self, invoice: Document) -> dict[str, Any]:
        """The invoice inside a Payment: no line items, no nested payments (as Xero's list)."""
        wire = self.render_document(invoice, summary_only=True)
        wire.update({"LineItems": [], "Payments": [], "CreditNotes": [], "Prepayments": [], "Overpayments": []})
        return wire

    # ================================================================ what a person does in Xero
    def allocate_by_hand(self, credit_note_id: str, invoice_id: str, amount: Decimal,
                         date: dt.date | None = None) -> str:
        """Apply credit to an invoice, under the allocation API's rules; returns the AllocationID."""
        credit_note = self.document(CREDIT_NOTE, credit_note_id)
        payload: dict[str, Any] = {"Amount": amount, "Invoice": {"InvoiceID": invoice_id}}
        if date is not None:
            payload["Date"] = date.isoformat()
        result = self._allocate_one(credit_note, payload)
        if not result.ok:
            raise ValueError("; ".join(result.messages))
        return str(result.wire["AllocationID"])

    def change_status(self, kind: DocKind, doc_id: str, status: str) -> None:
        """Void or delete as the web app does, under the API's transitions: DRAFT/SUBMITTED ->
        DELETED, AUTHORISED -> VOIDED, and never with a payment or allocation applied."""
        doc = self.document(kind, doc_id)
        errors: list[str] = []
        self._check_edit(kind, doc, {}, status, errors)
        if not errors and (status == doc.status or status not in TRANSITIONS.get(doc.status, set())):
            errors.append(f"{kind.label} not of valid status for modification")
        if errors:
            raise ValueError("; ".join(errors))
        doc.status = status
        doc.updated = self.clock()

    def edit_lines(self, kind: DocKind, doc_id: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
        """Replace the document's lines (API LineItems shape; a LineItemID keeps a line's identity)
        through the same rules as POST; Xero recomputes SubTotal, TotalTax, Total and AmountDue.
        Refused once a payment or allocation is applied, or on PAID/VOIDED/DELETED documents."""
        doc = self.document(kind, doc_id)
        result = self._save_document(kind, {kind.id_key: doc.doc_id, "LineItems": lines}, allow_update=True,
                                     unitdp=4)
        if not result.ok:
            raise ValueError("; ".join(result.messages))
        return result.wire

    def merge_contacts(self, from_contact_id: str, into_contact_id: str) -> list[str]:
        """Xero's merge: every document of the merged contact moves to the surviving one (its
        Contact changes, its UpdatedDateUTC moves on); the merged contact is ARCHIVED with
        MergedToContactID. Both contacts' UpdatedDateUTC move on. Returns the moved documents' IDs."""
        source = self.t.contacts.get(from_contact_id.lower())
        target = self.t.contacts.get(into_contact_id.lower())
        if source is None or target is None:
            raise NotFound(from_contact_id if source is None else into_contact_id)
        if source is target:
            raise ValueError("A contact cannot be merged into itself.")
        if source.status != "ACTIVE" or target.status != "ACTIVE":
            raise ValueError("Only ACTIVE contacts can be merged; restore an archived contact first.")
        now = self.clock()
        moved = [d for d in self.t.documents.values() if d.contact_id == source.contact_id]
        for doc in moved:
            doc.contact_id = target.contact_id
            doc.updated = now
        source.status, source.merged_to_contact_id, source.updated = "ARCHIVED", target.contact_id, now
        target.updated = now
        return [d.doc_id for d in moved]

    def forget_document(self, kind: DocKind, doc_id: str) -> None:
        """The organisation no longer holds this document (not something Xero lets a person do:
        Xero keeps DELETED and VOIDED documents). Its payments go with it; an allocation linking
        it to another document goes too, and that document gets the credit back (its
        UpdatedDateUTC moves on: the sandbox cannot know what it was before)."""
        doc = self.document(kind, doc_id)
        now = self.clock()
        for payment_id in doc.payment_ids:
            self.t.payments.pop(payment_id, None)
        for allocation_id in doc.allocation_ids:
            allocation = self.t.allocations.pop(allocation_id, None)
            if allocation is None:
                continue
            other = self.t.documents.get(allocation.credit_note_id if doc.kind == "invoice" else allocation.invoice_id)
            if other is None:
                continue
            if other.kind == "invoice":
                other.amount_credited -= allocation.amount
            else:
                other.allocated -= allocation.amount
            if allocation_id in other.allocation_ids:
                other.allocation_ids.remove(allocation_id)
            other.updated = now
            self._unsettle(other)
        del self.t.documents[doc.doc_id]
        if doc.number is not None:
            self.t.numbers.get((doc.kind, fold(doc.number)), {}).pop(doc.doc_id, None)

    # ================================================================ allocations
    def allocate(self, credit_note_id: str, payloads: list[Any]) -> list[ElementResult]:
        credit_note = self.document(CREDIT_NOTE, credit_note_id)
        return [self._allocate_one(credit_note, p) for p in payloads]

    def _allocate_one(self, cn: Document, p: Any) -> ElementResult:
        p = p if isinstance(p, dict) else {}
        errors: list[str] = []
        amount = to_decimal(p.get("Amount"))
        if amount is None or amount <= 0:
            errors.append("Amount must be greater than zero.")
            amount = Decimal("0")
        amount = round2(amount)
        raw_invoice = p.get("Invoice")
        invoice_id = _str(raw_invoice.get("InvoiceID")) if isinstance(raw_invoice, dict) else None
        invoice = self.t.documents.get((invoice_id or "").lower())
        date = parse_date(p.get("Date")) if p.get("Date") else utc_date(self.clock())
        if date is None:
            errors.append(f"The Date '{p.get('Date')}' is not a valid date.")
        errors.extend(self._lock_date_errors(date))  # an allocation posts on its date
        if invoice is None or invoice.kind != "invoice":
            errors.append("Invoice could not be found." if invoice_id else "An Invoice must be specified.")
        else:
            errors.extend(self._allocation_conflicts(cn, invoice, amount))
        if errors:
            return ElementResult(False, self._allocation_echo(cn, p, amount, date, invoice, errors), errors)
        assert invoice is not None and date is not None
        record = AllocationRecord(new_id(), cn.doc_id, invoice.doc_id, amount, date)
        self.t.allocations[record.allocation_id] = record
        now = self.clock()
        invoice.amount_credited += amount
        cn.allocated += amount
        for doc in (invoice, cn):
            doc.allocation_ids.append(record.allocation_id)
            doc.updated = now
            self._settle(doc, date)
        return ElementResult(True, {
            "AllocationID": record.allocation_id, "Amount": amount, "Date": ms_date(date),
            "Invoice": self.render_document(invoice), "CreditNote": self.render_document(cn),
            "IsDeleted": False,
        })

    def _allocation_conflicts(self, cn: Document, invoice: Document, amount: Decimal) -> list[str]:
        errors = []
        if cn.status != "AUTHORISED":
            errors.append(f"The credit note must be AUTHORISED to be allocated; its status is {cn.status}.")
        if invoice.status != "AUTHORISED":
            errors.append(f"The invoice must be AUTHORISED to receive an allocation; its status is {invoice.status}.")
        if invoice.contact_id != cn.contact_id:
            errors.append("The invoice and the credit note must belong to the same contact.")
        if invoice.currency_code != cn.currency_code:
            errors.append("The invoice and the credit note must be in the same currency.")
        if (cn.type == "ACCRECCREDIT") != (invoice.type == "ACCREC"):
            errors.append("A sales credit note can only be allocated to a sales invoice.")
        if amount > cn.remaining_credit:
            errors.append(f"The amount being allocated ({amount}) exceeds the remaining credit "
                          f"({cn.remaining_credit}) on the credit note.")
        if amount > invoice.amount_due:
            errors.append(f"The amount being allocated ({amount}) exceeds the amount due "
                          f"({invoice.amount_due}) on the invoice.")
        return errors

    def _allocation_echo(self, cn: Document, p: dict[str, Any], amount: Decimal, date: dt.date | None,
                         invoice: Document | None, errors: list[str]) -> dict[str, Any]:
        raw_invoice = p.get("Invoice") if isinstance(p.get("Invoice"), dict) else {}
        invoice_ref = {"InvoiceID": invoice.doc_id} if invoice else (
            {"InvoiceID": raw_invoice["InvoiceID"]} if isinstance(raw_invoice.get("InvoiceID"), str) else {})
        wire: dict[str, Any] = {"Amount": amount, "Invoice": invoice_ref,
                                "CreditNote": {"CreditNoteID": cn.doc_id}}
        if date is not None:
            wire["Date"] = ms_date(date)
        wire["ValidationErrors"] = [{"Message": m} for m in errors]
        return wire


# -------------------------------------------------------------------- helpers
# Fields an ``order`` parameter may name (besides the kind's number and ID), as ``where`` knows them.
DOCUMENT_ORDER_FIELDS = ("Type", "Status", "Reference", "CurrencyCode", "Contact.ContactID", "Contact.Name", "Date",
                         "DueDate", "Total", "SubTotal", "TotalTax", "AmountDue", "RemainingCredit", "AmountPaid",
                         "AmountCredited", "UpdatedDateUTC", "FullyPaidOnDate")
PAYMENT_ORDER_FIELDS = ("paymentid", "status", "amount", "bankamount", "date", "reference", "paymenttype",
                        "isreconciled", "currencyrate", "updateddateutc", "invoice.invoiceid", "invoice.invoicenumber",
                        "invoice.type", "invoice.contact.contactid", "invoice.contact.name", "account.code",
                        "account.accountid")


def _xero_day(day: dt.date) -> str:
    """A date as Xero's messages write it: 30-Nov-2018 (English month names, whatever the locale)."""
    month = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")[day.month - 1]
    return f"{day.day:02d}-{month}-{day.year}"


def _instant(epoch_seconds: float) -> dt.datetime:
    """A record's UpdatedDateUTC as the wire shows it (whole milliseconds, UTC)."""
    return dt.datetime.fromtimestamp(int(epoch_seconds * 1000) / 1000, tz=dt.timezone.utc)


def order_by(items: list[Any], order: str | None, fields: set[str], values: Callable[[Any], dict[str, Any]],
             type_name: str) -> list[Any]:
    """Sort by ``Field [ASC|DESC], …`` (case-insensitive names, nulls first ascending), stably
    over the default order. A field the resource does not have is an ``OrderError``."""
    if order is None or not order.strip():
        return items
    keys: list[tuple[str, bool]] = []
    for part in order.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
            raise OrderError(f"'{part.strip()}' is not a valid ordering; use Field ASC or Field DESC")
        if words[0].lower() not in fields:
            raise OrderError(f"No property or field '{words[0]}' exists in type '{type_name}'")
        keys.append((words[0].lower(), len(words) == 2 and words[1].upper() == "DESC"))
    rows = [(values(item), item) for item in items]
    for name, descending in reversed(keys):
        rows.sort(key=lambda row, name=name: _sort_key(row[0].get(name)), reverse=descending)
    return [item for _, item in rows]


def _sort_key(value: Any) -> tuple[bool, Any]:
    if isinstance(value, str):
        return True, fold(value)
    return value is not None, value if value is not None else 0


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _text(value: Any) -> str | None:
    """A string with something in it, else None (blank counts as absent)."""
    return value if isinstance(value, str) and value.strip() else None


def _is_absolute_http_url(url: str) -> bool:
    """Well-formed and absolute, as .NET's ``Uri.IsWellFormedUriString(url,
    UriKind.Absolute)`` judges it, restricted to http and https: no whitespace,
    control characters or unescaped ``<>"\\``, and a real host name."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 or ch in '<>"\\' for ch in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or not parts.hostname:
        return False
    host = parts.hostname
    if parts.netloc.rsplit("@", 1)[-1].startswith("["):  # an IPv6 literal: urlsplit has checked the brackets
        return ":" in host
    return all(_HOST_LABEL_RE.match(label) for label in host.rstrip(".").split("."))


def _uuid(value: Any) -> str | None:
    return value if isinstance(value, str) and _UUID_RE.match(value) else None


def _totals(lines: list[LineItem], lat: str) -> tuple[Decimal, Decimal, Decimal]:
    line_sum = sum((li.line_amount for li in lines), Decimal("0.00"))
    tax = sum((li.tax_amount for li in lines), Decimal("0.00"))
    if lat == "Inclusive":  # line amounts already contain the tax
        return round2(line_sum - tax), round2(tax), round2(line_sum)
    return round2(line_sum), round2(tax), round2(line_sum + tax)


def _render_line(line: LineItem, unitdp: int) -> dict[str, Any]:
    wire: dict[str, Any] = {"LineItemID": line.line_item_id}
    if line.description is not None:
        wire["Description"] = line.description
    wire["Quantity"] = line.quantity
    wire["UnitAmount"] = round_dp(line.unit_amount, 4 if unitdp == 4 else 2)
    if line.item_code is not None:
        wire["ItemCode"] = line.item_code
    if line.account_code is not None:
        wire["AccountCode"] = line.account_code
    if line.tax_type is not None:
        wire["TaxType"] = line.tax_type
    wire["TaxAmount"] = line.tax_amount
    wire["LineAmount"] = line.line_amount
    if line.discount_rate:
        wire["DiscountRate"] = line.discount_rate
    wire["Tracking"] = [{"TrackingCategoryID": t.category_id, "TrackingOptionID": t.option_id,
                         "Name": t.name, "Option": t.option} for t in line.tracking]
    return wire


def _echo_line(item: dict[str, Any], unitdp: int) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    for key in ("Description", "AccountCode", "TaxType", "ItemCode"):
        if isinstance(item.get(key), str):
            wire[key] = item[key]
    for key in ("Quantity", "UnitAmount", "LineAmount", "DiscountRate"):
        value = to_decimal(item.get(key))
        if value is not None:
            wire[key] = value
    wire["Tracking"] = [_echo_tracking(t) for t in item.get("Tracking") or [] if isinstance(t, dict)] \
        if isinstance(item.get("Tracking"), list) else []
    return wire


def _echo_tracking(entry: dict[str, Any]) -> dict[str, Any]:
    """What was sent, minus anything xero-python would refuse to read back."""
    wire: dict[str, Any] = {}
    for key in ("TrackingCategoryID", "TrackingOptionID"):
        if _uuid(entry.get(key)):
            wire[key] = entry[key]
    for key in ("Name", "Option"):
        if isinstance(entry.get(key), str) and len(entry[key]) <= TRACKING_NAME_LIMIT:
            wire[key] = entry[key]
    return wire


def _same_name(stored: str, given: str | None) -> bool:
    """Tracking names match case-insensitively (not accent-insensitively)."""
    return given is not None and stored.strip().casefold() == given.strip().casefold()


def _contact_echo(p: dict[str, Any], errors: list[str], existing: Contact | None = None) -> dict[str, Any]:
    wire: dict[str, Any] = {"ContactID": existing.contact_id if existing else ZERO_UUID}
    if isinstance(p.get("Name"), str) and len(p["Name"]) <= 255:  # the SDK refuses longer names
        wire["Name"] = p["Name"]
    if p.get("ContactStatus") in CONTACT_STATUSES:
        wire["ContactStatus"] = p["ContactStatus"]
    wire.update({"Addresses": [], "Phones": [], "ContactGroups": [], "ContactPersons": [],
                 "HasValidationErrors": True, "ValidationErrors": [{"Message": m} for m in errors]})
    return wire


def _contact_getter(contact: Contact) -> Callable[[str], Any]:
    values = {
        "name": contact.name, "contactid": contact.contact_id, "contactstatus": contact.status,
        "emailaddress": contact.email_address, "firstname": contact.first_name, "lastname": contact.last_name,
        "contactnumber": contact.contact_number, "accountnumber": contact.account_number,
        "mergedtocontactid": contact.merged_to_contact_id,
    }
    return lambda name: values.get(name.lower())


def _tracking_getter(category: TrackingCategory) -> Callable[[str], Any]:
    values = {"name": category.name, "status": category.status, "trackingcategoryid": category.category_id}
    return lambda name: values.get(name.lower())
