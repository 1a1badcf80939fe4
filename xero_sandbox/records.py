"""Plain records the backend keeps. No behaviour beyond small conveniences:
the rules live in ``books.py`` (accounting) and ``identity.py`` (OAuth2)."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Limits:
    """Xero's published limits; mutable so a test can shrink them.

    ``minute_s`` and ``day_s`` are the lengths of the fixed windows that ``per_minute`` (and
    ``app_per_minute``) and ``per_day`` count in: a benchmark shortens them to make a day of
    Xero's limits pass in minutes. ``tenant_per_day`` gives one organisation its own daily limit
    (Xero's Starter tier allows 1,000 calls a day), by tenant id."""

    per_minute: int = 60
    per_day: int = 5000
    concurrent: int = 5
    app_per_minute: int = 10000
    minute_s: float = 60.0
    day_s: float = 86400.0
    tenant_per_day: dict[str, int] = field(default_factory=dict)
    body_limit_bytes: int = 3_500_000
    access_token_ttl_s: int = 1800
    refresh_grace_s: int = 1800
    idempotency_ttl_s: int = 360
    # An unused refresh token dies after 60 days.
    refresh_token_ttl_s: int = 60 * 24 * 3600
    # Xero fails one of two refreshes of the same token arriving together. Set
    # this > 0 to reproduce: a reuse of a rotated token within this many seconds
    # of its first use is refused with invalid_grant (0 = grace always applies).
    refresh_race_window_s: float = 0.0
    # An authorization code must be exchanged within 5 minutes of the redirect.
    authorization_code_ttl_s: int = 300

    def day_limit(self, tenant_id: str) -> int:
        """The organisation's calls a day: its own limit if it has one, else ``per_day``."""
        overrides = {t.lower(): n for t, n in self.tenant_per_day.items()}
        return overrides.get(tenant_id.lower(), self.per_day)


class Clock:
    """Injectable time source. ``advance`` lets tests expire tokens and roll
    rate-limit windows without sleeping."""

    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self._source = source
        self._offset = 0.0

    def __call__(self) -> float:
        return self._source() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds

    def reset(self) -> None:
        self._offset = 0.0


@dataclass
class RequestRecord:
    """One handled HTTP request, for assertions and API-log comparisons."""

    method: str
    path: str
    query: dict[str, str]
    status: int | None = None
    tenant_id: str | None = None
    idempotency_key: str | None = None
    body_size: int = 0
    started: float = 0.0
    ended: float = 0.0
    client_id: str | None = None
    fault: str | None = None  # which injected fault, if any, shaped this answer
    replayed: bool = False  # answered from the idempotency cache
    dropped: bool = False  # connection closed without a response


# Apps created on or after this day may ask only for granular scopes (accounting.invoices, ...), not
# the broad accounting.transactions or accounting.reports.read; older apps may ask for either.
GRANULAR_SCOPES_FROM = dt.date(2026, 3, 2)
# An app registered without a creation date is one made before that day, as every app the pipeline
# used until then was: the existing set-ups keep their broad scopes.
CLASSIC_APP_CREATED = dt.date(2025, 1, 1)


@dataclass
class App:
    client_id: str
    client_secret: str
    custom_tenant_id: str | None = None  # set for custom connections (client_credentials)
    # Exact URIs the authorization endpoint may send a user back to (no wildcards, as in Xero).
    redirect_uris: list[str] = field(default_factory=list)
    created: dt.date = CLASSIC_APP_CREATED
    # Custom connections: the scopes the organisation authorised; every token carries them.
    scope: str | None = None

    @property
    def granular_scopes_only(self) -> bool:
        return self.created >= GRANULAR_SCOPES_FROM


@dataclass
class Account:
    code: str
    name: str
    type: str
    tax_type: str | None
    account_id: str = field(default_factory=new_id)
    status: str = "ACTIVE"


@dataclass
class TaxRate:
    tax_type: str
    name: str
    rate: Decimal


@dataclass
class Contact:
    contact_id: str
    name: str
    status: str = "ACTIVE"
    merged_to_contact_id: str | None = None
    email_address: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    contact_number: str | None = None
    account_number: str | None = None
    updated: float = 0.0


@dataclass
class TrackingOption:
    option_id: str
    name: str
    status: str = "ACTIVE"


@dataclass
class TrackingCategory:
    category_id: str
    name: str
    status: str = "ACTIVE"
    options: list[TrackingOption] = field(default_factory=list)


@dataclass(frozen=True)
class LineTracking:
    """One tracking category chosen on a line, with Xero's spelling of both names."""

    category_id: str
    option_id: str
    name: str
    option: str


@dataclass
class LineItem:
    line_item_id: str
    description: str | None
    quantity: Decimal
    unit_amount: Decimal
    account_code: str | None
    tax_type: str | None
    line_amount: Decimal
    tax_amount: Decimal
    item_code: str | None = None
    discount_rate: Decimal | None = None
    tracking: tuple[LineTracking, ...] = ()


@dataclass
class AllocationRecord:
    allocation_id: str
    credit_note_id: str
    invoice_id: str
    amount: Decimal
    date: dt.date


@dataclass
class PaymentRecord:
    """A payment received (or made) against an invoice, as Xero keeps it. A deleted payment
    stays, with Status DELETED, and no longer counts towards the invoice's AmountPaid."""

    payment_id: str
    invoice_id: str
    amount: Decimal
    date: dt.date
    updated: float
    status: str = "AUTHORISED"  # AUTHORISED | DELETED
    reference: str | None = None
    account_code: str | None = None  # the bank account the money went into
    currency_rate: Decimal = Decimal("1.000000")
    is_reconciled: bool = False


@dataclass
class Document:
    """An invoice or a credit note: Xero computes both the same way."""

    kind: str  # "invoice" | "credit_note"
    doc_id: str
    type: str
    contact_id: str
    number: str | None
    reference: str | None
    date: dt.date
    due_date: dt.date | None
    status: str
    line_amount_types: str
    currency_code: str
    currency_rate: Decimal
    line_items: list[LineItem]
    sub_total: Decimal
    total_tax: Decimal
    total: Decimal
    updated: float
    url: str | None = None
    amount_paid: Decimal = Decimal("0.00")
    amount_credited: Decimal = Decimal("0.00")  # invoices: credit notes applied
    allocated: Decimal = Decimal("0.00")  # credit notes: credit used up
    allocation_ids: list[str] = field(default_factory=list)
    fully_paid_on: dt.date | None = None
    payment_ids: list[str] = field(default_factory=list)  # every payment, deleted ones included
    # The client_id of the app whose PUT/POST created it (GET /Invoices?createdByMyApp=true);
    # None for documents keyed in by hand in Xero (seed_invoice, seed_bill).
    created_by: str | None = None

    @property
    def amount_due(self) -> Decimal:
        # A VOIDED or DELETED document is owed nothing (Xero answers AmountDue 0.00 for them).
        if self.status in ("VOIDED", "DELETED"):
            return Decimal("0.00")
        return self.total - self.amount_paid - self.amount_credited

    @property
    def remaining_credit(self) -> Decimal:
        if self.status in ("VOIDED", "DELETED"):
            return Decimal("0.00")
        return self.total - self.allocated


@dataclass
class Tenant:
    tenant_id: str
    name: str
    base_currency: str
    currencies: list[str]
    accounts: dict[str, Account]
    tax_rates: dict[str, TaxRate]
    created: float
    short_code: str
    contacts: dict[str, Contact] = field(default_factory=dict)
    documents: dict[str, Document] = field(default_factory=dict)  # invoices + credit notes
    # (kind, folded number) -> ids of the documents carrying it: Xero finds a number among a large
    # organisation's documents at once, and so must the sandbox (a scan per PUT element is quadratic).
    numbers: dict[tuple[str, str], dict[str, None]] = field(default_factory=dict)  # ids in order of creation
    allocations: dict[str, AllocationRecord] = field(default_factory=dict)
    payments: dict[str, PaymentRecord] = field(default_factory=dict)
    tracking_categories: dict[str, TrackingCategory] = field(default_factory=dict)
    # Lock dates (Accounting > Advanced > Financial settings), set by an adviser; None: not set.
    period_lock_date: dt.date | None = None  # no one but an adviser posts on or before it
    end_of_year_lock_date: dt.date | None = None  # no one at all posts on or before it
    invoice_seq: int = 0
    credit_note_seq: int = 0
    # Lists of documents kept between the pages of one read while nothing changes (SandboxBackend.cache_lists):
    # None, the default, lists afresh on every call.
    list_cache: dict[tuple, tuple[tuple, list["Document"]]] | None = None


@dataclass
class Connection:
    """An app's link to one tenant, as GET /connections lists it."""

    connection_id: str
    auth_event_id: str
    tenant_id: str
    created: float
    updated: float


@dataclass
class AuthorizationCode:
    """What a user's consent at the authorization endpoint leaves for the code exchange."""

    code: str
    client_id: str
    redirect_uri: str  # the exchange must present the same one
    scope: str  # granted scopes, space separated, in the order asked
    tenant_ids: list[str]  # the organisations the user ticked
    issued: float
    code_challenge: str | None = None  # PKCE, S256 only


@dataclass
class RefreshGrant:
    """One refresh token in a rotating chain."""

    token: str
    client_id: str
    tenant_ids: list[str]
    scope: str
    auth_event_id: str
    issued: float
    parent: str | None = None
    used_at: float | None = None  # first exchange; the grace window counts from here
    children: list[str] = field(default_factory=list)
    dead: bool = False
    # Whether refreshing answers an id_token: only chains consented with "openid" do when they
    # started at the authorization endpoint (chains from ``authorise`` always have, as before).
    id_token: bool = True


@dataclass
class AccessGrant:
    token: str
    client_id: str
    tenant_ids: list[str]
    scope: str
    expires_at: float
    auth_event_id: str
    # A custom connection's token reaches its one organisation without an xero-tenant-id header.
    custom_connection: bool = False
