"""The Xero Accounting API, through the official xero-python SDK, made safe to run unattended.

What the SDK does not do for us (see shared FACTS): it retries 429s and
re-sends PUTs inside urllib3, has no timeout by default, shares one token
object per process and refreshes without locking. Here every client has its
own retry-free pool and real timeouts, reads its access token from the shared
TokenStore, and turns each HTTP exchange into an ApiCall record for api_log.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import urllib3
from xero_python.accounting import (
    AccountingApi,
    Allocation,
    Allocations,
    Contact,
    Contacts,
    CreditNote,
    CreditNotes,
    Invoice,
    Invoices,
)
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.exceptions import HTTPStatusException, OpenApiException
from xero_python.identity import IdentityApi

from astute_xero.export.documents import INVOICE, DocumentKind
from astute_xero.xero.pacing import DayBudgetSpent, Pacer, PacingTimeout
from astute_xero.xero.chart import CHART_READS, XeroChart, chart_from_reads
from astute_xero.xero.tokens import REFRESH_MARGIN, TokenStore, XeroConnectionSettings

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 120  # a chunk of 100 invoices can take Xero tens of seconds
IDEMPOTENCY_IN_PROGRESS = 409  # Xero is still working on a request with this Idempotency-Key
LATE_COMMIT_MARGIN_S = 60  # how long after our read timeout Xero may still commit a call we gave up on
MAX_MINUTE_LIMIT_WAIT_S = 65  # the longest minute-limit Retry-After slept on (its window is 60 s); longer: Airflow retries
MAX_ATTEMPTS = 5
READ_PAGE_SIZE = 1000  # Xero's largest page
RATE_LIMIT_HEADERS = ("X-DayLimit-Remaining", "X-MinLimit-Remaining", "X-AppMinLimit-Remaining")

T = TypeVar("T")


@dataclass
class ApiCall:
    """One HTTP exchange with Xero, as api_log records it. Holds no token and no secret."""

    method: str
    endpoint: str
    tenant_id: str | None
    started_at: dt.datetime
    duration_ms: int = 0
    http_status: int | None = None
    idempotency_key: str | None = None
    rate_limits: dict[str, int] = field(default_factory=dict)
    error: str | None = None


class XeroCallError(RuntimeError):
    """A call that did not succeed. `outcome_known` is False when Xero may have acted anyway."""

    def __init__(self, message: str, call: ApiCall, *, outcome_known: bool):
        super().__init__(message)
        self.call = call
        self.outcome_known = outcome_known

    @property
    def refused(self) -> bool:
        """Xero answered and turned this request down for what it says (a 4xx such as a validation error):
        sent again unchanged, it would be refused again. Not: a 401, 403, 404, 408, 409 or 429, which say
        nothing about the request itself (authorisation, a resource not visible yet, the same request still
        in progress, limits)."""
        status = self.call.http_status
        return status is not None and 400 <= status < 500 and status not in (401, 403, 404, 408, 409, 429)

    def organisation_stop_reason(self) -> str | None:
        """Why this failure stops the organisation for the run, in words saying what happened and what to
        do; None when it does not (it is worth Airflow's retry, or it is about one request).

        The organisation's own trouble: Xero refuses the app access to it (403: disconnected), or keeps
        failing for it (5xx: a read still failing after the client's retries, or a write whose outcome
        is unknown). A call with no answer at all (a timeout, a dropped connection) says nothing about
        the organisation: the task fails and Airflow retries it.
        """
        status, tenant = self.call.http_status, self.call.tenant_id
        if status == 403:
            return (
                f"Xero refused access to organisation {tenant} (HTTP 403 on {self.call.method} {self.call.endpoint}): "
                "the Xero app is no longer connected to it. Re-connect the organisation in Xero (re-authorise "
                "the app for it); its invoices and credit notes wait for the next run."
            )
        if status is not None and status >= 500:
            what = (
                f"still failing after {MAX_ATTEMPTS} attempts" if self.call.method == "GET"
                else "so Xero may or may not have acted; the next run checks what Xero has before sending anything"
            )
            return (
                f"Xero kept failing for organisation {tenant} (HTTP {status} on {self.call.method} "
                f"{self.call.endpoint}, {what}). Nothing more is sent to it this run; its invoices and credit notes "
                "wait for the next run. If it persists, check Xero's status page (status.developer.xero.com)."
            )
        return None


class ReadOnlyRefused(RuntimeError):
    """A read-only client (a preview's) was asked to write: a bug, never sent to Xero."""


class DailyLimitReached(XeroCallError):
    """The organisation's daily call budget is spent: stop exporting to it until it returns (`returns_at`)."""

    def __init__(self, message: str, call: ApiCall, *, outcome_known: bool, returns_at: dt.datetime | None = None):
        super().__init__(message, call, outcome_known=outcome_known)
        self.returns_at = returns_at

    def organisation_stop_reason(self) -> str | None:
        return str(self)


class MinuteLimitPersisted(XeroCallError):
    """Xero kept answering 429 for its per-minute limit (not the daily one) after every wait we allow.

    Xero did nothing (outcome known); the task fails and Airflow retries it later, when the minute
    windows have passed. Never a reason to stop the organisation for the day.
    """


def harden(api_client: ApiClient) -> ApiClient:
    """No hidden retries: a PUT is never re-sent behind our back, a 429 never slept on in urllib3."""
    api_client.rest_client.pool_manager = urllib3.PoolManager(num_pools=4, maxsize=8, retries=False)
    return api_client


class XeroClient:
    """Calls to one Xero connection. Every method returns its ApiCall; failures raise XeroCallError."""

    def __init__(
        self,
        settings: XeroConnectionSettings,
        tokens: TokenStore,
        pacer: Pacer,
        *,
        on_retried_call: Callable[[ApiCall], None] | None = None,
        read_timeout_s: int = READ_TIMEOUT_S,
        late_commit_margin_s: int = LATE_COMMIT_MARGIN_S,
        read_only: bool = False,
    ):
        """`read_only`: refuse every call but a GET before it is sent (a preview's client)."""
        self.read_only = read_only
        self.read_timeout_s = read_timeout_s  # an int: the SDK ignores a float timeout
        # The longest one exchange can take before our client gives up on it (connect, then read).
        self.call_bound = dt.timedelta(seconds=CONNECT_TIMEOUT_S + read_timeout_s)
        # A call our client gave up on may still be committed by Xero: until this long after it left.
        self.late_commit_window = dt.timedelta(seconds=read_timeout_s + late_commit_margin_s)
        self._finish_by: float | None = None  # time.monotonic() by which every call must be over (finish_within)
        self._settings = settings
        self._tokens = tokens
        self._pacer = pacer
        self._token = tokens.access_token()
        self._rejected_token: str | None = None
        self._on_retried_call = on_retried_call or (lambda call: None)
        oauth2 = OAuth2Token(client_id=settings.client_id, client_secret=settings.client_secret)
        # Configuration() is a per-process singleton in the SDK: give this client its own token object.
        configuration = Configuration(oauth2_token=oauth2)
        configuration.oauth2_token = oauth2
        self._api_client = harden(
            ApiClient(
                configuration,
                oauth2_token_getter=self._sdk_token,
                oauth2_token_saver=self._refuse_sdk_refresh,
            )
        )
        self._accounting = AccountingApi(self._api_client, base_url=settings.accounting_base_url)

    def close(self) -> None:
        self._pacer.close()

    def finish_within(self, seconds: float) -> None:
        """Every call must be over within `seconds` from now (the task's execution_timeout, less a margin): a call
        that could not finish by then (its waits for a slot and the budget, then its own timeouts) is not sent,
        so Airflow's timeout never kills a worker in the middle of a call it made."""
        self._finish_by = time.monotonic() + seconds

    def time_left(self) -> float | None:
        """Seconds left before `finish_within`'s limit (None: no limit)."""
        return None if self._finish_by is None else self._finish_by - time.monotonic()

    # --- tokens -------------------------------------------------------------------------
    def _sdk_token(self) -> dict[str, Any]:
        # No refresh_token and no expiry here: the SDK must never refresh (or refuse) by itself. The
        # TokenStore refreshes under a lock; a token that expires anyway gets a 401, then a refresh.
        return {
            "access_token": self._token.value,
            "scope": self._token.scope.split(),
            "expires_in": None,
            "token_type": "Bearer",
            "expires_at": None,
        }

    def _ensure_fresh_token(self) -> None:
        if self._rejected_token is not None:
            self._token = self._tokens.access_token(force_refresh=True, rejected=self._rejected_token)
            self._rejected_token = None
        elif self._token.expires_at - dt.datetime.now(dt.timezone.utc) < REFRESH_MARGIN:
            self._token = self._tokens.access_token()

    def _refuse_sdk_refresh(self, token: dict[str, Any]) -> None:
        raise RuntimeError("xero-python tried to refresh a token by itself; the TokenStore owns refreshes")

    # --- the calls ---------------------------------------------------------------------
    def connections(self) -> list[dict[str, Any]]:
        """The Xero organisations this connection reaches (GET /connections), as Xero lists them: tenantId,
        tenantName, tenantType, id, authEventId. An identity call, outside every organisation's budget; a token
        refused once (401) is refreshed and the call sent again."""
        identity = IdentityApi(self._api_client, base_url=self._settings.api_url.rstrip("/"))
        for attempt in (1, 2):
            self._ensure_fresh_token()
            try:
                listed = identity.get_connections(_request_timeout=(CONNECT_TIMEOUT_S, self.read_timeout_s))
            except HTTPStatusException as error:
                status = getattr(error.http_resp, "status", None)
                if status == 401 and attempt == 1:
                    self._rejected_token = self._token.value
                    continue
                raise XeroCallError(f"GET /connections answered HTTP {status}",
                                    ApiCall("GET", "connections", None, dt.datetime.now(dt.timezone.utc),
                                            http_status=status), outcome_known=True) from None
            return [{"tenantId": str(c.tenant_id), "tenantName": c.tenant_name, "tenantType": c.tenant_type,
                     "id": str(c.id), "authEventId": str(c.auth_event_id)} for c in listed]
        raise AssertionError("unreachable")  # pragma: no cover

    def create_documents(
        self, kind: DocumentKind, tenant_id: str, elements: Sequence[Invoice | CreditNote], idempotency_key: str,
        *, on_send: Callable[[], None] | None = None,
    ) -> tuple[list[Invoice | CreditNote], ApiCall]:
        """PUT /Invoices or /CreditNotes: create only, every element answered (summarizeErrors=false). `on_send` is
        called right before each attempt's request is written (after every wait): when the call really leaves."""
        options = {"summarize_errors": False, "unitdp": 4, "idempotency_key": idempotency_key}
        if kind is INVOICE:
            result, call = self._invoke(
                "PUT", "Invoices", tenant_id,
                lambda **kw: self._accounting.create_invoices(tenant_id, Invoices(invoices=list(elements)), **options, **kw),
                idempotency_key=idempotency_key, on_send=on_send,
            )
            return list(result.invoices or []), call
        result, call = self._invoke(
            "PUT", "CreditNotes", tenant_id,
            lambda **kw: self._accounting.create_credit_notes(
                tenant_id, CreditNotes(credit_notes=list(elements)), **options, **kw
            ),
            idempotency_key=idempotency_key, on_send=on_send,
        )
        return list(result.credit_notes or []), call

    def documents_by_number(
        self, kind: DocumentKind, tenant_id: str, numbers: Sequence[str]
    ) -> tuple[list[Invoice | CreditNote], ApiCall]:
        if kind is INVOICE:
            result, call = self._invoke(
                "GET", "Invoices", tenant_id,
                lambda **kw: self._accounting.get_invoices(
                    tenant_id, invoice_numbers=list(numbers), unitdp=4, summary_only=False, page_size=1000, **kw
                ),
            )
            return list(result.invoices or []), call
        # GET /CreditNotes has no CreditNoteNumbers parameter: a `where` filter does it.
        where = " OR ".join(f'CreditNoteNumber=="{escape_where_string(number)}"' for number in numbers)
        result, call = self._invoke(
            "GET", "CreditNotes", tenant_id,
            lambda **kw: self._accounting.get_credit_notes(tenant_id, where=where, unitdp=4, page_size=1000, **kw),
        )
        return list(result.credit_notes or []), call

    def documents_since(
        self, kind: DocumentKind, tenant_id: str, contact_ids: Sequence[str], since: dt.datetime
    ) -> tuple[list[Invoice | CreditNote], list[ApiCall]]:
        """Documents of these Contacts created or changed since `since`, every page, whichever app or person
        made them: the caller knows its own by their identity (Url, number, content), never by createdByMyApp,
        which names the client id that sent a document and so forgets ours when the organisation moves to
        another app (a Custom Connection, a new app for granular scopes)."""
        since = xero_utc_timestamp(since)
        found: list[Invoice | CreditNote] = []
        calls: list[ApiCall] = []
        contacts_where = " OR ".join(f'Contact.ContactID==guid("{contact_id}")' for contact_id in contact_ids)
        for page in range(1, 1000):
            if kind is INVOICE:
                result, call = self._invoke(
                    "GET", "Invoices", tenant_id,
                    lambda page=page, **kw: self._accounting.get_invoices(
                        tenant_id, if_modified_since=since, contact_i_ds=list(contact_ids), unitdp=4, page=page,
                        page_size=1000, **kw,
                    ),
                )
                batch = list(result.invoices or [])
            else:
                result, call = self._invoke(
                    "GET", "CreditNotes", tenant_id,
                    lambda page=page, **kw: self._accounting.get_credit_notes(
                        tenant_id, if_modified_since=since, where=contacts_where, unitdp=4, page=page, page_size=1000, **kw
                    ),
                )
                batch = list(result.credit_notes or [])
            calls.append(call)
            found.extend(batch)
            if len(batch) < 1000:
                break
        return found, calls

    def documents_modified(
        self, kind: DocumentKind, tenant_id: str, since: dt.datetime | None, page: int,
        *, on_send: Callable[[], None] | None = None,
    ) -> tuple[list[Invoice | CreditNote], ApiCall]:
        """One page (READ_PAGE_SIZE, the most Xero gives) of this kind's sales documents changed since `since`
        (every one when None), oldest change first: every ACCREC invoice or ACCRECCREDIT credit note, whoever
        made it (not createdByMyApp: see documents_since); the caller keeps those it knows as its own. `on_send` is
        called as the request leaves (after the pacer's wait; again for a retry)."""
        options: dict[str, Any] = {"unitdp": 4, "page": page, "page_size": READ_PAGE_SIZE, "order": "UpdatedDateUTC ASC"}
        if since is not None:
            options["if_modified_since"] = xero_utc_timestamp(since)
        if kind is INVOICE:
            result, call = self._invoke(
                "GET", "Invoices", tenant_id,
                lambda **kw: self._accounting.get_invoices(tenant_id, where='Type=="ACCREC"', **options, **kw),
                on_send=on_send,
            )
            return list(result.invoices or []), call
        result, call = self._invoke(
            "GET", "CreditNotes", tenant_id,
            lambda **kw: self._accounting.get_credit_notes(tenant_id, where='Type=="ACCRECCREDIT"', **options, **kw),
            on_send=on_send,
        )
        return list(result.credit_notes or []), call

    def invoices_by_id(self, tenant_id: str, invoice_ids: Sequence[str]) -> tuple[list[Invoice], ApiCall]:
        result, call = self._invoke(
            "GET", "Invoices", tenant_id,
            lambda **kw: self._accounting.get_invoices(
                tenant_id, i_ds=list(invoice_ids), summary_only=False, page_size=1000, **kw
            ),
        )
        return list(result.invoices or []), call

    def credit_notes_by_id(self, tenant_id: str, credit_note_ids: Sequence[str]) -> tuple[list[CreditNote], ApiCall]:
        """These credit notes as Xero has them now: remaining credit and allocations."""
        where = " OR ".join(f'CreditNoteID==guid("{credit_note_id}")' for credit_note_id in credit_note_ids)
        result, call = self._invoke(
            "GET", "CreditNotes", tenant_id,
            lambda **kw: self._accounting.get_credit_notes(tenant_id, where=where, page_size=1000, **kw),
        )
        return list(result.credit_notes or []), call

    def allocate_credit_note(
        self, tenant_id: str, credit_note_id: str, allocation: Allocation, idempotency_key: str
    ) -> tuple[Allocation, ApiCall]:
        """PUT /CreditNotes/{id}/Allocations: apply part of a credit note to an invoice."""
        result, call = self._invoke(
            "PUT", "CreditNotes/Allocations", tenant_id,
            lambda **kw: self._accounting.create_credit_note_allocation(
                tenant_id, credit_note_id, Allocations(allocations=[allocation]), summarize_errors=False,
                idempotency_key=idempotency_key, **kw,
            ),
            idempotency_key=idempotency_key,
        )
        return (result.allocations or [None])[0], call

    def contacts_named(self, tenant_id: str, names: Sequence[str]) -> tuple[list[Contact], ApiCall]:
        """Active Contacts whose Name matches one of `names` (Xero matches case- and accent-insensitively)."""
        where = " OR ".join(f'Name=="{escape_where_string(name)}"' for name in names)
        result, call = self._invoke(
            "GET",
            "Contacts",
            tenant_id,
            lambda **kw: self._accounting.get_contacts(tenant_id, where=where, page_size=1000, **kw),
        )
        return list(result.contacts or []), call

    def contacts_by_id(self, tenant_id: str, contact_ids: Sequence[str]) -> tuple[list[Contact], ApiCall]:
        """These Contacts as Xero has them now, archived and merged ones included."""
        result, call = self._invoke(
            "GET",
            "Contacts",
            tenant_id,
            lambda **kw: self._accounting.get_contacts(
                tenant_id, i_ds=list(contact_ids), include_archived=True, page_size=1000, **kw
            ),
        )
        return list(result.contacts or []), call

    def rename_contact(self, tenant_id: str, contact_id: str, name: str) -> tuple[Contact, ApiCall]:
        """Push a customer's new name to its linked Contact (the only detail Astute exports)."""
        result, call = self._invoke(
            "POST",
            "Contacts",
            tenant_id,
            lambda **kw: self._accounting.update_contact(
                tenant_id, contact_id, Contacts(contacts=[Contact(contact_id=contact_id, name=name)]), **kw
            ),
        )
        return (result.contacts or [None])[0], call

    def create_contacts(self, tenant_id: str, names: Sequence[str], idempotency_key: str) -> tuple[list[Contact], ApiCall]:
        result, call = self._invoke(
            "PUT",
            "Contacts",
            tenant_id,
            lambda **kw: self._accounting.create_contacts(
                tenant_id,
                Contacts(contacts=[Contact(name=name) for name in names]),
                summarize_errors=False,
                idempotency_key=idempotency_key,
                **kw,
            ),
            idempotency_key=idempotency_key,
        )
        return list(result.contacts or []), call

    def chart(self, tenant_id: str, organisation_name: str) -> tuple[XeroChart, list[ApiCall]]:
        """What the organisation accepts on an invoice line and header, and the dates it no longer accepts: the five
        reads one after the other (the export's validation sends them at once, each with read_chart_part)."""
        reads = {endpoint: self.read_chart_part(tenant_id, endpoint) for endpoint in CHART_READS}
        answers = {endpoint: answer for endpoint, (answer, _) in reads.items()}
        return chart_from_reads(tenant_id, organisation_name, answers), [call for _, call in reads.values()]

    def read_chart_part(self, tenant_id: str, endpoint: str) -> tuple[Any, ApiCall]:
        """One of the chart's GETs (an endpoint of chart.CHART_READS): independent of the others, so a caller may
        send the five at once, each from a client of its own."""
        send = getattr(self._accounting, CHART_READS[endpoint])
        return self._invoke("GET", endpoint, tenant_id, lambda **kw: send(tenant_id, **kw))

    def concurrency(self, tenant_id: str) -> int:
        """How many calls the organisation allows in progress at once, as the pacer plans with it."""
        return self._pacer.limits.of(tenant_id).concurrent

    def calls_left_today(self, tenant_id: str) -> int:
        """What is left of the organisation's day of calls, as the pacer counts it (shared with every worker)."""
        return self._pacer.day_budgets([tenant_id])[tenant_id].remaining

    # --- one exchange, with the only retries we allow ------------------------------------
    def _invoke(
        self,
        method: str,
        endpoint: str,
        tenant_id: str,
        send: Callable[..., tuple[T, int, Any]],
        *,
        idempotency_key: str | None = None,
        on_send: Callable[[], None] | None = None,
    ) -> tuple[T, ApiCall]:
        """Send within the organisation's budget, retrying only what is safe: a minute-limit 429 (every
        worker then waits out Retry-After), a 401 (after a refresh) and a read answered 5xx. None of these
        retries can duplicate anything: Xero did not act on a 429 or a 401, and a read changes nothing.

        The token is made fresh before the organisation's concurrency slot is taken, never while holding
        it: a refresh is a call to Xero's identity service behind a row lock shared by every worker, and a
        slow one must not keep one of the organisation's 5 slots waiting. A token that expires during a long
        wait for the slot or the budget is answered 401, refreshed and retried like any other.

        A bounded wait for the slot or the budget that runs out is a failed call Xero never saw (outcome
        known, with its api_log row): each step treats it like any other failure that is not the
        organisation's own, so the other organisations go on and Airflow retries. The waits are bounded
        by `finish_within` too: a call leaves only if it can be over by then.
        """
        if self.read_only and method != "GET":
            raise ReadOnlyRefused(f"this client only reads Xero (a preview): {method} {endpoint} refused for {tenant_id}")
        for attempt in range(1, MAX_ATTEMPTS + 1):
            self._ensure_fresh_token()  # outside the slot: a slow token endpoint holds none
            try:
                # May wait (bounded) for a slot and for the budget; the slot is this call's until it is over.
                with self._pacer.call(tenant_id, hold_for=self.call_bound, max_wait=self._wait_allowed()):
                    if on_send is not None:
                        on_send()
                    data, call, error = self._exchange(method, endpoint, tenant_id, send, idempotency_key)
            except PacingTimeout as timeout:
                call = ApiCall(method, endpoint, tenant_id, dt.datetime.now(dt.timezone.utc),
                               idempotency_key=idempotency_key, error=f"not sent: {timeout}")
                raise XeroCallError(call.error, call, outcome_known=True) from None
            except DayBudgetSpent as spent:
                call = ApiCall(method, endpoint, tenant_id, dt.datetime.now(dt.timezone.utc),
                               idempotency_key=idempotency_key, error=f"not sent: {spent}")
                raise DailyLimitReached(call.error, call, outcome_known=True, returns_at=spent.returns_at) from None
            self._pacer.observe(tenant_id, call.started_at, call.rate_limits)
            if error is None:
                return data, call
            wait = self._retry_wait(error, call, attempt)
            if wait is None:
                failure = self._failure(error, call)
                if isinstance(failure, DailyLimitReached):
                    self._pacer.block_day(tenant_id, _retry_after(error))
                raise failure from None
            self._on_retried_call(call)
            if call.http_status == 429:
                self._pacer.block(tenant_id, wait)  # every worker waits, not only this one
            elif wait:
                time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_allowed(self) -> dt.timedelta | None:
        """How long a call may wait for its slot and budget and still be over by `finish_within`'s limit."""
        left = self.time_left()
        if left is None:
            return None
        return dt.timedelta(seconds=max(0.0, left - self.call_bound.total_seconds()))

    def _exchange(
        self, method: str, endpoint: str, tenant_id: str, send: Callable[..., tuple[T, int, Any]], idempotency_key: str | None
    ) -> tuple[T | None, ApiCall, HTTPStatusException | None]:
        """One HTTP exchange: its data, its ApiCall, or the HTTP error to decide on."""
        call = ApiCall(method, endpoint, tenant_id, dt.datetime.now(dt.timezone.utc), idempotency_key=idempotency_key)
        started = time.monotonic()
        try:
            data, status, headers = send(_return_http_data_only=False, _request_timeout=(CONNECT_TIMEOUT_S, self.read_timeout_s))
            call.http_status = status
            call.rate_limits = _rate_limits(headers)
            return data, call, None
        except HTTPStatusException as error:
            # The HTTP status from the response itself: the SDK's `status` property of a 400 parses the body
            # as JSON and raises when it is not (an HTML page from a proxy), and so does its str().
            call.http_status = getattr(error.http_resp, "status", None)
            call.rate_limits = _rate_limits(error.headers)
            return None, call, error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            call.error = f"no answer from Xero: {type(error).__name__}"
            raise XeroCallError(call.error, call, outcome_known=method == "GET") from None
        except OpenApiException as error:  # e.g. an answer the SDK could not read
            call.error = f"unreadable answer from Xero: {type(error).__name__}"
            raise XeroCallError(call.error, call, outcome_known=False) from None
        finally:
            call.duration_ms = int((time.monotonic() - started) * 1000)

    def _retry_wait(self, error: HTTPStatusException, call: ApiCall, attempt: int) -> float | None:
        """How long to wait before sending again, or None: not again (the caller raises `_failure`)."""
        if call.http_status == 429:
            # Which limit it is, Xero says in X-Rate-Limit-Problem; never guessed from Retry-After.
            problem = _rate_limit_problem(error)
            retry_after = _retry_after(error)
            call.error = f"rate limited (HTTP 429, {problem or 'unnamed'} limit" + (
                f", Retry-After {retry_after} s)" if retry_after is not None else ")")
            if problem == "day":
                return None  # never slept on: the organisation stops for the run
            if attempt >= MAX_ATTEMPTS or (retry_after or 0) > MAX_MINUTE_LIMIT_WAIT_S:
                return None  # a minute limit that will not pass in-process: Airflow retries the task later
            call.error += "; waited and retried"
            return float(retry_after if retry_after is not None else 1)
        if attempt >= MAX_ATTEMPTS:
            return None
        if call.http_status == 401:
            call.error = "access token refused (401); refreshed and retried"
            self._rejected_token = self._token.value
            return 0.0
        if call.method == "GET" and (call.http_status or 0) >= 500:
            call.error = f"HTTP {call.http_status} on a read; retried"
            return 0.5 * 2**attempt  # a read changes nothing in Xero: safe to repeat
        return None

    def _failure(self, error: HTTPStatusException, call: ApiCall) -> XeroCallError:
        """The error to raise for a call that will not be retried, with a short, safe `call.error` for api_log."""
        if call.http_status == 429:
            problem = _rate_limit_problem(error)
            retry_after = _retry_after(error)
            if problem == "day":
                message = (
                    f"Xero's daily API limit for organisation {call.tenant_id} is spent"
                    + (f" (it resets in about {retry_after // 3600} h {retry_after % 3600 // 60} min)" if retry_after else "")
                    + "; the rest of this organisation's invoices are left for the next run."
                )
                call.error = message
                returns_at = call.started_at + dt.timedelta(seconds=retry_after) if retry_after else None
                return DailyLimitReached(message, call, outcome_known=True, returns_at=returns_at)
            waits = (
                f"asked for a wait of {retry_after} s, longer than a minute window" if (retry_after or 0) > MAX_MINUTE_LIMIT_WAIT_S
                else f"still refused after {MAX_ATTEMPTS} attempts"
            )
            message = (
                f"Xero's per-minute limit for organisation {call.tenant_id} persisted (HTTP 429, X-Rate-Limit-Problem "
                f"'{problem or 'not given'}', {waits}). This is not the daily API limit and Xero did nothing; "
                "the task fails so that Airflow retries it once the minute has passed."
            )
            call.error = message
            return MinuteLimitPersisted(message, call, outcome_known=True)
        detail = _xero_message(error.body)
        if detail:
            call.error = f"HTTP {call.http_status}: {detail}"
        elif error.body:
            content_type = (_header(error, "Content-Type") or "unknown type").split(";")[0].strip()[:60]
            call.error = f"HTTP {call.http_status} (an answer that is not Xero's JSON: {content_type})"
        else:
            call.error = f"HTTP {call.http_status}"
        # A refusal (4xx): Xero did nothing. 5xx: a read changed nothing, but Xero may have acted on a write.
        # 409 on a write: a request with the same Idempotency-Key is still in progress at Xero, and may land.
        unsettled = call.http_status == IDEMPOTENCY_IN_PROGRESS and call.method != "GET"
        outcome_known = call.http_status is not None and not unsettled and (
            call.http_status < 500 or call.method == "GET")
        return XeroCallError(call.error, call, outcome_known=outcome_known)


def xero_utc_timestamp(moment: dt.datetime) -> dt.datetime:
    """`moment` as Xero documents If-Modified-Since: "a UTC timestamp (yyyy-mm-ddThh:mm:ss)", accurate to the
    second. Xero defines the value as UTC (and may read it so whatever offset follows), and xero-python writes
    a header's datetime with isoformat(), so an aware time (a timestamptz read in a Sydney session:
    ...T21:58:12.472595+11:00) could be read hours late. Returned naive, in UTC, floored to the whole second (never later than `moment`,
    so "modified since" skips nothing): isoformat() is then exactly yyyy-mm-ddThh:mm:ss. A naive `moment` is
    refused: every time we hold is aware, and a naive one's zone would be a guess."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a naive datetime ({moment.isoformat()}) cannot be sent to Xero: its time zone is unknown")
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def escape_where_string(value: str) -> str:
    """A string literal inside Xero's `where` filter: backslashes and double quotes escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def enum_value(value: Any) -> Any:
    """The plain value of one of the SDK's enums (a status, a type); anything else as it is."""
    return getattr(value, "value", value)


def _int_header(headers: Any, name: str) -> int | None:
    try:
        return int(headers.get(name))
    except (TypeError, ValueError):
        return None


def _rate_limits(headers: Any) -> dict[str, int]:
    if not headers:
        return {}
    limits = {}
    for name in RATE_LIMIT_HEADERS:
        value = _int_header(headers, name)
        if value is not None:
            limits[name] = value
    return limits


def _xero_message(body: bytes | None) -> str:
    """Xero's own words from an error body, whatever its shape; never the raw body (it may be HTML)."""
    if not body:
        return ""
    try:
        data = json.loads(body)
    except ValueError:  # not JSON (a proxy's page), or not UTF-8
        return ""
    if not isinstance(data, dict):
        return ""
    elements = data.get("Elements")
    messages = [
        error.get("Message")
        for element in (elements if isinstance(elements, list) else [])
        if isinstance(element, dict)
        for error in (element.get("ValidationErrors") if isinstance(element.get("ValidationErrors"), list) else [])
        if isinstance(error, dict)
    ]
    parts = [data.get("Message") or data.get("Detail") or data.get("Title") or data.get("error") or ""]
    parts.extend(m for m in messages if m)
    return "; ".join(str(p) for p in parts if p)[:2000]


def _header(error: HTTPStatusException, name: str) -> str | None:
    """A response header of a failed call, its name matched case-insensitively."""
    try:
        headers = error.headers or {}
        wanted = name.lower()
        return next((str(value) for key, value in headers.items() if str(key).lower() == wanted), None)
    except Exception:  # noqa: BLE001 - a missing or odd header set is no header
        return None


def _rate_limit_problem(error: HTTPStatusException) -> str:
    """X-Rate-Limit-Problem in lower case ('minute', 'day', 'appminute', 'concurrent'), '' when absent."""
    value = (_header(error, "X-Rate-Limit-Problem") or "").strip().lower()
    return "".join(ch for ch in value if ch.isalnum() or ch in "-_")[:32]


def _retry_after(error: HTTPStatusException) -> int | None:
    try:
        return max(0, int(str(_header(error, "Retry-After")).strip()))
    except ValueError:
        return None
