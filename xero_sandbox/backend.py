"""The sandbox's state and rules, with no HTTP: tenants and their books,
OAuth2 grants, rate limits, idempotency, faults, clock and request log."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import threading
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Callable

from .books import CREDIT_NOTE, INVOICE, DocKind, Ledger
from .faults import FaultSwitches
from .identity import DEFAULT_SCOPE, IdentityStore
from .limits import IdempotencyCache, RateLimiter, Refusal, TenantCallStats
from .records import Account, Clock, Document, Limits, RequestRecord, TaxRate, Tenant, new_id

DEFAULT_ACCOUNTS: list[dict[str, Any]] = [
    {"code": "090", "name": "Business Bank Account", "type": "BANK", "tax_type": "BASEXCLUDED"},
    {"code": "200", "name": "Sales", "type": "REVENUE", "tax_type": "OUTPUT"},
    {"code": "260", "name": "Other Revenue", "type": "REVENUE", "tax_type": "OUTPUT"},
    {"code": "270", "name": "Interest Income", "type": "REVENUE", "tax_type": "EXEMPTOUTPUT"},
    {"code": "310", "name": "Cost of Goods Sold", "type": "DIRECTCOSTS", "tax_type": "BASEXCLUDED"},
    {"code": "400", "name": "Advertising", "type": "OVERHEADS", "tax_type": "BASEXCLUDED"},
    {"code": "610", "name": "Accounts Receivable", "type": "CURRENT", "tax_type": "BASEXCLUDED"},
    {"code": "820", "name": "GST", "type": "CURRLIAB", "tax_type": "BASEXCLUDED"},
]
EXPENSE_ACCOUNT_TYPES = ("EXPENSE", "DIRECTCOSTS", "OVERHEADS")
DEFAULT_TAX_RATES: list[dict[str, Any]] = [
    {"tax_type": "OUTPUT", "name": "GST on Income", "rate": Decimal("10")},
    {"tax_type": "EXEMPTOUTPUT", "name": "GST Free Income", "rate": Decimal("0")},
    {"tax_type": "BASEXCLUDED", "name": "BAS Excluded", "rate": Decimal("0")},
]


@dataclasses.dataclass(frozen=True)
class HistoricInvoice:
    """An ACCREC invoice an app created in Xero earlier, for ``seed_invoices_in_bulk``. ``lines``: its
    LineItems as PUT /Invoices takes them (invoices with equal lines may share one tuple: it is validated and
    computed once). ``updated``: when it was created (epoch seconds, before now). ``paid``: a payment received
    against it on ``paid_on``, at ``paid_at`` (epoch seconds, after ``updated``)."""

    contact_id: str
    number: str
    date: dt.date
    due_date: dt.date
    url: str | None
    lines: tuple[dict[str, Any], ...]
    updated: float
    paid: Decimal | None = None
    paid_on: dt.date | None = None
    paid_at: float | None = None


class SandboxBackend:
    """Everything the fake Xero knows. Safe to share between server threads:
    record-changing operations run under ``lock``."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.clock = clock if isinstance(clock, Clock) else Clock(clock) if clock else Clock()
        self.limits = Limits()
        self.lock = threading.RLock()
        self.identity = IdentityStore(self.clock, self.limits)
        self.rate_limiter = RateLimiter(self.clock, self.limits)
        self.idempotency = IdempotencyCache(self.clock, self.limits)
        self.faults = FaultSwitches(self.identity.expire_access_tokens)
        self.tenants: dict[str, Tenant] = {}
        self._requests: list[RequestRecord] = []
        self._requests_lock = threading.Lock()

    # ------------------------------------------------------------ lifecycle
    def reset(self) -> None:
        """Forget apps, tenants, tokens, data, faults, counters and the request
        log; limits go back to Xero's defaults and the clock stops being advanced."""
        with self.lock:
            self.tenants.clear()
            self.identity.reset()
            self.rate_limiter.reset()
            self.idempotency.reset()
            self.faults.clear()
            defaults = Limits()  # a fresh instance: its tenant_per_day is a new dict, not shared
            for f in dataclasses.fields(Limits):
                setattr(self.limits, f.name, getattr(defaults, f.name))
            if isinstance(self.clock, Clock):
                self.clock.reset()
            with self._requests_lock:
                self._requests.clear()

    def advance(self, seconds: float) -> None:
        """Move the sandbox clock forward (expire tokens, roll windows)."""
        self.clock.advance(seconds)

    # ------------------------------------------------------------ set-up
    def register_app(self, client_id: str, client_secret: str, custom_tenant_id: str | None = None) -> None:
        """``custom_tenant_id`` makes it a custom connection (client_credentials grant)."""
        self.identity.register_app(client_id, client_secret, custom_tenant_id)

    def add_tenant(self, name: str, tenant_id: str | None = None, base_currency: str = "AUD",
                   currencies: list[str] | None = None, accounts: list[dict[str, Any]] | None = None,
                   tax_rates: list[dict[str, Any]] | None = None) -> str:
        tenant_id = (tenant_id or new_id()).lower()
        subscribed = [base_currency.upper()] + [c.upper() for c in currencies or [] if c.upper() != base_currency.upper()]
        chart = {a["code"]: Account(code=str(a["code"]), name=a.get("name", str(a["code"])), type=a.get("type", "REVENUE"),
                                    tax_type=a.get("tax_type"), status=a.get("status", "ACTIVE"))
                 for a in (accounts if accounts is not None else DEFAULT_ACCOUNTS)}
        rates = {r["tax_type"]: TaxRate(r["tax_type"], r.get("name", r["tax_type"]), Decimal(str(r.get("rate", 0))))
                 for r in (tax_rates if tax_rates is not None else DEFAULT_TAX_RATES)}
        with self.lock:
            self.tenants[tenant_id] = Tenant(
                tenant_id=tenant_id, name=name, base_currency=base_currency.upper(), currencies=subscribed,
                accounts=chart, tax_rates=rates, created=self.clock(), short_code="!" + secrets.token_hex(3),
            )
        return tenant_id

    def authorise(self, client_id: str, tenant_ids: list[str], scope: str = DEFAULT_SCOPE,
                  refresh_token: str | None = None) -> str:
        """A user consents to ``tenant_ids``: returns the first refresh token of a new chain (``refresh_token``
        when given: a consent made before this sandbox started, whose token a connection already holds)."""
        with self.lock:
            missing = [t for t in tenant_ids if t.lower() not in self.tenants]
            if missing:
                raise KeyError(f"unknown tenants: {missing}")
        return self.identity.authorise(client_id, [t.lower() for t in tenant_ids], scope, refresh_token)

    def disconnect(self, client_id: str, tenant_id: str) -> None:
        """The organisation disconnects the app (Settings > Connected apps, or
        ``DELETE /connections/{id}``): its calls become 403 AuthenticationUnsuccessful
        while the app's other organisations, tokens and refresh chain carry on."""
        self.identity.disconnect(client_id, tenant_id.lower())

    def add_contact(self, tenant_id: str, name: str, status: str = "ACTIVE",
                    merged_to_contact_id: str | None = None) -> str:
        """Seed a contact directly (no uniqueness check, so tests can build odd states)."""
        with self.lock:
            return self.ledger(tenant_id).add_contact(name, status, merged_to_contact_id)

    def seed_invoice(self, tenant_id: str, contact_id: str, invoice_number: str | None = None, *,
                     amount: Decimal | str | int = Decimal("100.00"), status: str = "AUTHORISED",
                     date: dt.date | None = None, due_date: dt.date | None = None,
                     currency_code: str | None = None, account_code: str | None = None,
                     description: str = "Seeded invoice", created_by: str | None = None) -> str:
        """An ACCREC invoice already in Xero (e.g. keyed in by hand), created
        through the same rules as the API; one line of ``amount`` (tax exclusive).
        ``created_by``: the client_id of an app that created it through the API (for
        ``createdByMyApp``); None, the default, is a document keyed in by hand."""
        with self.lock:
            ledger = self.ledger(tenant_id)
            code = account_code or next((a.code for a in ledger.t.accounts.values() if a.type in ("REVENUE", "SALES")),
                                        next(iter(ledger.t.accounts), None))
            payload: dict[str, Any] = {
                "Type": "ACCREC", "Contact": {"ContactID": contact_id}, "Status": status,
                "LineItems": [{"Description": description, "Quantity": 1, "UnitAmount": Decimal(str(amount)),
                               **({"AccountCode": code} if code else {})}],
            }
            for key, value in (("InvoiceNumber", invoice_number), ("CurrencyCode", currency_code),
                               ("Date", date.isoformat() if date else None),
                               ("DueDate", due_date.isoformat() if due_date else None)):
                if value is not None:
                    payload[key] = value
            (result,) = ledger.save_documents(INVOICE, [payload], allow_update=False, unitdp=2, created_by=created_by)
            if not result.ok:
                raise ValueError("; ".join(result.messages))
            return str(result.wire["InvoiceID"])

    def seed_invoices_in_bulk(self, tenant_id: str, invoices: Iterable[HistoricInvoice], *,
                              created_by: str | None = None) -> list[str]:
        """Many AUTHORISED ACCREC invoices at once, as PUT /Invoices (unitdp=4) by the app ``created_by`` stored
        them when they were created (``HistoricInvoice.updated``), for a benchmark's organisation of a million.
        Each distinct tuple of lines goes through the PUT's own rules once (unit prices, line amounts, tax,
        totals, account and tax codes); every invoice gets its own InvoiceID and LineItemIDs, and its number
        (unique, as Xero keeps it), Contact (which must exist and be ACTIVE), dates and Url are checked as a PUT
        checks them. A payment is received through the same rule as ``record_payment`` (PAID when it settles
        the invoice). Returns the InvoiceIDs in order; ``ValueError`` with Xero's message on the first refusal."""
        ids: list[str] = []
        with self.lock:
            ledger = self.ledger(tenant_id)
            templates: dict[int, tuple[tuple[dict[str, Any], ...], Document]] = {}
            for invoice in invoices:
                kept = templates.get(id(invoice.lines))
                if kept is None:
                    payload = {"Type": "ACCREC", "Status": "AUTHORISED", "Contact": {"ContactID": invoice.contact_id},
                               "Date": invoice.date.isoformat(), "LineItems": [dict(line) for line in invoice.lines]}
                    errors: list[str] = []
                    template = ledger._build(INVOICE, payload, None, 4, errors)
                    if errors or template is None:
                        raise ValueError("; ".join(errors))
                    kept = templates[id(invoice.lines)] = (invoice.lines, template)
                template = kept[1]
                errors = []
                contact = ledger.t.contacts.get(invoice.contact_id.lower())
                if contact is None or contact.status != "ACTIVE":
                    errors.append(f"The contact with ContactID {invoice.contact_id} could not be found.")
                if invoice.due_date < invoice.date:
                    errors.append("Due Date must not be earlier than the Date.")
                if ledger._by_number(INVOICE, invoice.number) is not None:
                    errors.append("Invoice # must be unique.")
                url = ledger._url({"Url": invoice.url}, None, errors) if invoice.url is not None else None
                errors.extend(ledger._lock_date_errors(invoice.date))
                if errors:
                    raise ValueError(f"{invoice.number}: " + "; ".join(errors))
                doc = dataclasses.replace(
                    template, doc_id=new_id(), contact_id=contact.contact_id, number=invoice.number,
                    date=invoice.date, due_date=invoice.due_date, updated=invoice.updated, url=url,
                    line_items=[dataclasses.replace(line, line_item_id=new_id()) for line in template.line_items],
                    allocation_ids=[], payment_ids=[], created_by=created_by)
                ledger._store(doc)
                if invoice.paid:
                    payment = ledger.t.payments[ledger.pay(doc.doc_id, invoice.paid, invoice.paid_on)]
                    payment.updated = doc.updated = invoice.paid_at if invoice.paid_at is not None else invoice.updated
                ids.append(doc.doc_id)
        return ids

    def cache_lists(self, tenant_id: str, enabled: bool = True) -> None:
        """Keep a large organisation's document lists between the pages of a read while nothing in it changes
        (a benchmark's million invoices: Xero answers each page of a list in its own time, and the sandbox
        should not scan and sort a million records per page). Only with a clock that moves forward (the
        default): a change is seen by its UpdatedDateUTC becoming the newest."""
        with self.lock:
            self.tenants[tenant_id.lower()].list_cache = {} if enabled else None

    def seed_bill(self, tenant_id: str, contact_id: str, number: str, amount: Decimal | str | int = "100.00",
                  date: dt.date | None = None) -> str:
        """A supplier bill (AUTHORISED ACCPAY) already in Xero, created through
        the same rules, on the first expense account. Its number is not unique
        in Xero: it never blocks an ACCREC invoice of the same number, and
        ``GET /Invoices?InvoiceNumbers=`` returns both."""
        with self.lock:
            ledger = self.ledger(tenant_id)
            code = next((a.code for a in ledger.t.accounts.values()
                         if a.type in EXPENSE_ACCOUNT_TYPES and a.status == "ACTIVE"), None)
            if code is None:
                raise ValueError(f"tenant {tenant_id} has no active EXPENSE, DIRECTCOSTS or OVERHEADS account")
            payload: dict[str, Any] = {
                "Type": "ACCPAY", "Contact": {"ContactID": contact_id}, "Status": "AUTHORISED", "InvoiceNumber": number,
                "LineItems": [{"Description": "Seeded bill", "Quantity": 1, "UnitAmount": Decimal(str(amount)),
                               "AccountCode": code}],
            }
            if date is not None:
                payload["Date"] = date.isoformat()
            (result,) = ledger.save_documents(INVOICE, [payload], allow_update=False, unitdp=2)
            if not result.ok:
                raise ValueError("; ".join(result.messages))
            return str(result.wire["InvoiceID"])

    def add_tracking_category(self, tenant_id: str, name: str, options: list[str], status: str = "ACTIVE") -> str:
        """A tracking category set up in the organisation, with its options (ACTIVE);
        returns its TrackingCategoryID. Xero's limits hold: at most 2 ACTIVE
        categories and 4 in all; names of at most 100 characters."""
        with self.lock:
            return self.ledger(tenant_id).add_tracking_category(name, list(options), status)

    def set_tracking_option_status(self, tenant_id: str, tracking_category_id: str, option: str, status: str) -> str:
        """Archive (or restore) one option, as a user does in Xero; returns its TrackingOptionID."""
        with self.lock:
            return self.ledger(tenant_id).set_tracking_option_status(tracking_category_id, option, status)

    def set_lock_dates(self, tenant_id: str, period_lock_date: dt.date | None = None,
                       end_of_year_lock_date: dt.date | None = None) -> None:
        """An adviser sets the organisation's lock dates (Accounting > Advanced > Financial settings > Lock
        dates); None clears one. GET /Organisation then shows them, and a posted document dated on or before
        either is refused: an app is never an adviser, so the period lock date binds it too."""
        with self.lock:
            tenant = self.tenants[tenant_id.lower()]
            tenant.period_lock_date, tenant.end_of_year_lock_date = period_lock_date, end_of_year_lock_date

    def record_payment(self, tenant_id: str, invoice_id: str, amount: Decimal | str | int,
                       date: dt.date | None = None, *, reference: str | None = None,
                       account_code: str | None = None) -> str:
        """A payment received against an AUTHORISED invoice, as finance records it in Xero, for up to
        its AmountDue (``date``: today when not given; into the first ACTIVE bank account unless
        ``account_code``). Its AmountPaid rises and AmountDue drops; at 0 it is PAID with
        FullyPaidOnDate = ``date``; both UpdatedDateUTCs are the clock's. Returns the PaymentID.
        ``ValueError`` (Xero's messages) on another status, a non-positive amount or more than is due."""
        with self.lock:
            return self.ledger(tenant_id).pay(invoice_id, Decimal(str(amount)), date, reference, account_code)

    def delete_payment(self, tenant_id: str, payment_id: str) -> None:
        """Remove a payment as Xero does: it stays, Status DELETED; the invoice owes the amount again
        (a PAID one is AUTHORISED again, without FullyPaidOnDate); both UpdatedDateUTCs move on.
        ``ValueError`` if already deleted, ``KeyError`` if unknown."""
        with self.lock:
            self.ledger(tenant_id).delete_payment(payment_id)

    def allocate_credit_note(self, tenant_id: str, credit_note_id: str, invoice_id: str,
                             amount: Decimal | str | int, date: dt.date | None = None) -> str:
        """Apply a credit note to an invoice by hand, under the allocation API's rules (both
        AUTHORISED, same contact, currency and type family; at most the RemainingCredit and the
        AmountDue). Returns the AllocationID; ``ValueError`` with the API's messages if refused."""
        with self.lock:
            return self.ledger(tenant_id).allocate_by_hand(credit_note_id, invoice_id, Decimal(str(amount)), date)

    def void_document(self, tenant_id: str, kind: str, doc_id: str) -> None:
        """Void an AUTHORISED invoice or credit note (``kind``: "invoice" | "credit_note"). Xero refuses
        (``ValueError``) while a payment or allocation is applied ("This document cannot be edited as it
        has a payment or credit note allocated to it.") and for any other status."""
        with self.lock:
            self.ledger(tenant_id).change_status(_doc_kind(kind), doc_id, "VOIDED")

    def delete_document(self, tenant_id: str, kind: str, doc_id: str) -> None:
        """Delete a DRAFT or SUBMITTED document (status DELETED; it is still listed, as in Xero).
        An AUTHORISED one can only be voided: ``ValueError``."""
        with self.lock:
            self.ledger(tenant_id).change_status(_doc_kind(kind), doc_id, "DELETED")

    def edit_document_lines(self, tenant_id: str, kind: str, doc_id: str,
                            lines: list[dict[str, Any]]) -> dict[str, Any]:
        """A person edits the lines (``LineItems`` as the API takes them: Description, Quantity,
        UnitAmount, AccountCode, TaxType, LineItemID…) of a DRAFT, SUBMITTED or AUTHORISED document while
        no payment or allocation is applied; Xero recomputes SubTotal, TotalTax, Total and AmountDue.
        Returns the document as the API renders it; ``ValueError`` with Xero's messages if refused."""
        with self.lock:
            return self.ledger(tenant_id).edit_lines(_doc_kind(kind), doc_id, list(lines))

    def merge_contacts(self, tenant_id: str, from_contact_id: str, into_contact_id: str) -> list[str]:
        """Merge ``from`` into ``into`` as the web app does: ``from``'s documents move to ``into`` (their
        Contact and UpdatedDateUTC change); ``from`` is ARCHIVED with MergedToContactID. Returns the moved
        documents' IDs. ``ValueError`` for a contact merged into itself or one that is not ACTIVE."""
        with self.lock:
            return self.ledger(tenant_id).merge_contacts(from_contact_id, into_contact_id)

    def forget_document(self, tenant_id: str, kind: str, doc_id: str) -> None:
        """Not a Xero action: the organisation no longer holds this document, as after a restore from a
        backup taken before it was created. GET by ID answers 404, lists leave it out, its number is
        free again; its payments go with it, and an allocation's credit goes back to the other document."""
        with self.lock:
            self.ledger(tenant_id).forget_document(_doc_kind(kind), doc_id)

    def payments(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every payment (DELETED ones included) as GET /Payments renders them."""
        with self.lock:
            ledger = self.ledger(tenant_id)
            return [ledger.render_payment(p) for p in ledger.find_payments()]

    # ------------------------------------------------------------ inspection
    def ledger(self, tenant_id: str) -> Ledger:
        return Ledger(self.tenants[tenant_id.lower()], self.clock)

    def contacts(self, tenant_id: str) -> list[dict[str, Any]]:
        with self.lock:
            ledger = self.ledger(tenant_id)
            return [ledger.render_contact(c) for c in ledger.find_contacts(None, True, None, None)]

    def invoices(self, tenant_id: str) -> list[dict[str, Any]]:
        with self.lock:
            ledger = self.ledger(tenant_id)
            return [ledger.render_document(d) for d in ledger.find_documents(INVOICE)]

    def document_count(self, tenant_id: str, kind: str = INVOICE.name) -> int:
        """How many invoices (or ``"credit_note"``s) the tenant holds, bills included, without rendering
        them: cheap enough to poll while a benchmark runs."""
        with self.lock:
            return sum(1 for d in self.tenants[tenant_id.lower()].documents.values() if d.kind == kind)

    def tracking_categories(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every category (ACTIVE, ARCHIVED and DELETED) with every option, as the API renders them."""
        with self.lock:
            ledger = self.ledger(tenant_id)
            return [ledger.render_tracking_category(c, include_archived=True)
                    for c in sorted(ledger.t.tracking_categories.values(), key=lambda c: c.name.casefold())]

    def credit_notes(self, tenant_id: str) -> list[dict[str, Any]]:
        with self.lock:
            ledger = self.ledger(tenant_id)
            return [ledger.render_document(d) for d in ledger.find_documents(CREDIT_NOTE)]

    def call_stats(self, tenant_id: str) -> TenantCallStats:
        """The tenant's rate-limited calls since the last reset: admitted, most in progress at once, 429s by problem."""
        return self.rate_limiter.stats(tenant_id)

    def peak_concurrency(self, tenant_id: str) -> int:
        """The most calls the tenant had in progress at once since the last reset."""
        return self.rate_limiter.stats(tenant_id).peak_in_flight

    def rate_limit_refusals(self, tenant_id: str | None = None) -> list[Refusal]:
        """Every 429 the limits answered since the last reset (time, tenant, problem), oldest first.
        Injected ones (``faults.rate_limit_next``) are counted in ``faults.injected`` instead."""
        return self.rate_limiter.refusals(tenant_id)

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every request handled so far, in arrival order of completion."""
        with self._requests_lock:
            return list(self._requests)

    def record_request(self, record: RequestRecord) -> None:
        with self._requests_lock:
            self._requests.append(record)


def _doc_kind(kind: str | DocKind) -> DocKind:
    if isinstance(kind, DocKind):
        return kind
    names = {"invoice": INVOICE, "invoices": INVOICE, "credit_note": CREDIT_NOTE, "creditnote": CREDIT_NOTE,
             "credit_notes": CREDIT_NOTE, "creditnotes": CREDIT_NOTE}
    try:
        return names[kind.strip().lower()]
    except KeyError:
        raise ValueError(f"kind must be 'invoice' or 'credit_note', not {kind!r}") from None
