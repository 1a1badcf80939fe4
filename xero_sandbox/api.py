"""Xero's HTTP surface as plain functions: an ``ApiRequest`` in, an
``ApiResponse`` out. Routing, auth, limits, idempotency and fault injection
are decided here; sockets are the business of ``server.py``."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import html
import logging
import math
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qs, quote, unquote, urlencode

from .backend import SandboxBackend
from .books import CREDIT_NOTE, INVOICE, DocKind, ElementResult, Ledger, NotFound, OrderError
from .identity import AuthorizeError, TokenError
from .records import AccessGrant, RequestRecord, Tenant
from .where import WhereError
from .wire import dumps, iso_utc, loads, ms_date, ms_datetime, round_dp

log = logging.getLogger("xero_sandbox")

ACCOUNTING_PREFIX = "/api.xro/2.0/"
# The sandbox serves every Xero host on one: each endpoint keeps its own host's path.
# login.xero.com/identity/connect/authorize -> /identity/connect/authorize;
# identity.xero.com/connect/token -> /connect/token; api.xero.com/connections -> /connections.
AUTHORIZE_PATH = "/identity/connect/authorize"
NOT_FOUND_TEXT = b"The resource you're looking for cannot be found"
CURRENCY_NAMES = {
    "AUD": "Australian Dollar", "NZD": "New Zealand Dollar", "USD": "United States Dollar",
    "GBP": "British Pound", "EUR": "Euro", "CAD": "Canadian Dollar", "SGD": "Singapore Dollar",
    "JPY": "Japanese Yen", "CHF": "Swiss Franc", "HKD": "Hong Kong Dollar", "ZAR": "South African Rand",
}
# Base currency -> (Organisation.Version, CountryCode, Timezone).
REGIONS = {
    "AUD": ("AU", "AU", "AUSEASTERNSTANDARDTIME"), "NZD": ("NZ", "NZ", "NEWZEALANDSTANDARDTIME"),
    "GBP": ("UK", "GB", "GMTSTANDARDTIME"), "USD": ("US", "US", "EASTERNSTANDARDTIME"),
}
ACCOUNT_CLASSES = {
    "BANK": "ASSET", "CURRENT": "ASSET", "FIXED": "ASSET", "INVENTORY": "ASSET", "NONCURRENT": "ASSET",
    "PREPAYMENT": "ASSET", "DEPRECIATN": "EXPENSE", "DIRECTCOSTS": "EXPENSE", "EXPENSE": "EXPENSE",
    "OVERHEADS": "EXPENSE", "WAGESEXPENSE": "EXPENSE", "SUPERANNUATIONEXPENSE": "EXPENSE",
    "CURRLIAB": "LIABILITY", "LIABILITY": "LIABILITY", "TERMLIAB": "LIABILITY", "PAYGLIABILITY": "LIABILITY",
    "SUPERANNUATIONLIABILITY": "LIABILITY", "WAGESPAYABLELIABILITY": "LIABILITY", "EQUITY": "EQUITY",
    "OTHERINCOME": "REVENUE", "REVENUE": "REVENUE", "SALES": "REVENUE",
}
# Resource -> the scope families that open it; a family's ".read" variant opens GETs only.
# Apps made before 2 March 2026 hold the broad accounting.transactions; newer apps hold its granular
# successors (accounting.invoices, accounting.payments, ...), which older apps may use as well. A
# sub-resource (History, Allocations) is opened by its parent's scopes, except Attachments.
TRANSACTIONS = "accounting.transactions"
SCOPES = {
    "contacts": ("accounting.contacts",), "contactgroups": ("accounting.contacts",),
    "invoices": (TRANSACTIONS, "accounting.invoices"), "creditnotes": (TRANSACTIONS, "accounting.invoices"),
    "linkedtransactions": (TRANSACTIONS, "accounting.invoices"), "purchaseorders": (TRANSACTIONS, "accounting.invoices"),
    "quotes": (TRANSACTIONS, "accounting.invoices"), "repeatinginvoices": (TRANSACTIONS, "accounting.invoices"),
    "payments": (TRANSACTIONS, "accounting.payments"), "batchpayments": (TRANSACTIONS, "accounting.payments"),
    "overpayments": (TRANSACTIONS, "accounting.payments"), "prepayments": (TRANSACTIONS, "accounting.payments"),
    "banktransactions": (TRANSACTIONS, "accounting.banktransactions"),
    "banktransfers": (TRANSACTIONS, "accounting.banktransactions"),
    "manualjournals": (TRANSACTIONS, "accounting.manualjournals"),
    "expenseclaims": (TRANSACTIONS, "accounting.classicexpenses"), "receipts": (TRANSACTIONS, "accounting.classicexpenses"),
    "journals": ("accounting.journals",),  # only accounting.journals.read exists: GET only
    # Items are reachable through either family.
    "items": ("accounting.settings", "accounting.invoices"),
    "organisation": ("accounting.settings",), "accounts": ("accounting.settings",),
    "taxrates": ("accounting.settings",), "currencies": ("accounting.settings",),
    "trackingcategories": ("accounting.settings",), "brandingthemes": ("accounting.settings",),
    "users": ("accounting.settings",),
}
SUB_RESOURCE_SCOPES = {"attachments": ("accounting.attachments",)}


@dataclass
class ApiRequest:
    method: str
    path: str  # decoded path without the query string
    query_string: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    body_size: int
    client_id: str | None = None  # the calling app, once its bearer token is trusted

    def __post_init__(self) -> None:
        parsed = parse_qs(self.query_string, keep_blank_values=True)
        self.query: dict[str, str] = {k: v[-1] for k, v in parsed.items()}
        self._lower = {k.lower(): v for k, v in self.query.items()}

    def param(self, name: str) -> str | None:
        """Xero's query parameter names are case-insensitive."""
        return self._lower.get(name.lower())

    def flag(self, name: str, default: bool) -> bool:
        value = self.param(name)
        return default if value is None else value.strip().lower() in ("true", "1", "yes")

    def csv(self, name: str) -> list[str] | None:
        value = self.param(name)
        return [v for v in (s.strip() for s in value.split(",")) if v] if value else None


@dataclass
class ApiResponse:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection instead of answering


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> ApiResponse:
    return ApiResponse(status, dumps(payload), headers=dict(headers or {}))


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> ApiResponse:
    """Xero's RFC 7807-ish body for 401/403/413 and similar."""
    body = {"Type": None, "Title": title, "Status": status, "Detail": detail,
            "Instance": str(uuid.uuid4()), "Extensions": {}}
    return json_response(status, body, headers)


def api_exception(error_number: int, type_: str, message: str, elements: list[Any] | None = None) -> ApiResponse:
    body: dict[str, Any] = {"ErrorNumber": error_number, "Type": type_, "Message": message}
    if elements is not None:
        body["Elements"] = elements
    return json_response(400, body)


def rate_limited(problem_name: str, retry_after: int | None, headers: dict[str, str] | None = None) -> ApiResponse:
    """429 with an empty body, as Xero answers."""
    out = dict(headers or {})
    out["X-Rate-Limit-Problem"] = problem_name
    if retry_after is not None:
        out["Retry-After"] = str(retry_after)
    return ApiResponse(429, b"", content_type=None, headers=out)


def not_found() -> ApiResponse:
    return ApiResponse(404, NOT_FOUND_TEXT, content_type="text/html; charset=utf-8")


def error_page(status: int, error: str, description: str) -> ApiResponse:
    """Xero's sign-in error page: a person reads it, no app is told."""
    body = (f"<!DOCTYPE html><html><head><title>Xero | Error</title></head><body>"
            f"<h1>Error: {html.escape(error)}</h1><p>{html.escape(description)}</p></body></html>")
    return ApiResponse(status, body.encode("utf-8"), content_type="text/html; charset=utf-8",
                       headers={"Cache-Control": "no-store"})


def redirect(uri: str, params: dict[str, str | None]) -> ApiResponse:
    """302 to ``uri`` with ``params`` added to its query (absent ones left out). Spaces are sent
    as %20 so a scope list reads the same to every client."""
    query = urlencode({k: v for k, v in params.items() if v is not None}, quote_via=quote)
    return ApiResponse(302, b"", content_type=None,
                       headers={"Location": uri + ("&" if "?" in uri else "?") + query, "Cache-Control": "no-store"})


class BadRequest(Exception):
    def __init__(self, response: ApiResponse) -> None:
        super().__init__(response.status)
        self.response = response


class SandboxApi:
    """Turns requests into responses against one ``SandboxBackend``."""

    def __init__(self, backend: SandboxBackend, sleep: Callable[[float], None] = time.sleep) -> None:
        self.backend = backend
        self._sleep = sleep

    # ================================================================ pipeline
    def handle(self, req: ApiRequest) -> ApiResponse:
        record = RequestRecord(
            method=req.method, path=req.path, query=dict(req.query), body_size=req.body_size,
            started=self.backend.clock(), idempotency_key=req.headers.get("idempotency-key"),
            # What the request claimed; the tenant is only trusted after auth.
            tenant_id=req.headers.get("xero-tenant-id", "").strip().lower() or None,
        )
        try:
            response = self._handle(req, record)
        except Exception:  # a sandbox bug must still answer, and loudly
            log.exception("xero_sandbox failed on %s %s", req.method, req.path)
            response = problem(500, "Internal Server Error", "The sandbox failed; see its log.")
        record.status, record.dropped = response.status, response.drop
        record.ended = self.backend.clock()
        self.backend.record_request(record)
        return response

    def _handle(self, req: ApiRequest, record: RequestRecord) -> ApiResponse:
        faults = self.backend.faults
        if req.body_size > self.backend.limits.body_limit_bytes:
            return problem(413, "Request Entity Too Large",
                           f"The request body of {req.body_size} bytes exceeds the limit of "
                           f"{self.backend.limits.body_limit_bytes} bytes.")
        failure = faults.take("fail_next", req.method, req.path)
        if failure is not None:
            record.fault = "fail_next"
            if failure.status == 429:
                return rate_limited("minute", 1)
            return problem(failure.status, "Injected failure", f"fail_next answered {failure.status}")
        raw_error = faults.take("error_body", req.method, req.path)
        if raw_error is not None:
            record.fault = "error_body"
            return ApiResponse(raw_error.status, raw_error.body, content_type=raw_error.content_type)
        delay = faults.delay_for(req.path)
        path = req.path.rstrip("/").lower()
        if (path + "/").startswith(ACCOUNTING_PREFIX):
            response = self._accounting(req, record, delay)
        else:
            self._sleep(delay)
            response = self._identity(req, record, path)
        if faults.take("drop_after_commit", req.method, req.path) is not None:
            record.fault = "drop_after_commit"
            response.drop = True
        hang = faults.take("hang_after_commit", req.method, req.path)
        if hang is not None:
            record.fault = "hang_after_commit"
            self._sleep(hang.seconds)
        if response.status < 400:
            action = faults.action_after(req.method, req.path)
            if action is not None:  # a person working in Xero before the client's next request
                record.fault = "between_requests"
                action()
        return response

    # ================================================================ identity
    def _identity(self, req: ApiRequest, record: RequestRecord, path: str) -> ApiResponse:
        if path == AUTHORIZE_PATH and req.method == "GET":
            return self._authorize(req, record)
        if path == "/connect/token" and req.method == "POST":
            return self._token(req, record)
        if path == "/connect/revocation" and req.method == "POST":
            return self._revoke(req)
        if path == "/connections" and req.method == "GET":
            return self._connections(req)
        if path.startswith("/connections/") and path.count("/") == 2 and req.method == "DELETE":
            return self._disconnect(req, path.rsplit("/", 1)[1])
        return not_found()

    def _authorize(self, req: ApiRequest, record: RequestRecord) -> ApiResponse:
        """The browser's leg of the authorization-code flow. The person's sign-in and consent
        screen are played by the backend's consent (``identity.set_consent``); the answer is the
        redirect the browser would follow, or Xero's error page when the client or its redirect
        URI cannot be trusted."""
        query = req.query  # OAuth parameter names are case-sensitive, unlike the Accounting API's
        state = query.get("state")
        try:
            code = self.backend.identity.authorize(
                client_id=query.get("client_id"), redirect_uri=query.get("redirect_uri"),
                response_type=query.get("response_type"), scope=query.get("scope"),
                code_challenge=query.get("code_challenge"), code_challenge_method=query.get("code_challenge_method"))
        except AuthorizeError as exc:
            if not exc.redirect:
                return error_page(400, exc.code, exc.description)
            record.client_id = query.get("client_id")
            return redirect(query["redirect_uri"], {"error": exc.code, "state": state})
        record.client_id = code.client_id
        # Besides code and state, Xero's redirect carries the granted scope and an OIDC
        # session_state; clients need only the first two.
        return redirect(code.redirect_uri, {
            "code": code.code, "scope": code.scope, "state": state,
            "session_state": f"{uuid.uuid4().hex}.{uuid.uuid4().hex[:16]}",
        })

    def _client_credentials(self, req: ApiRequest, form: dict[str, str]) -> tuple[str | None, str | None]:
        """xero-python sends client_id/secret in the form; others use HTTP Basic."""
        auth = req.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:].strip()).decode("utf-8")
                client_id, _, secret = decoded.partition(":")
                return unquote(client_id), unquote(secret)
            except (ValueError, UnicodeDecodeError):
                return None, None
        return form.get("client_id"), form.get("client_secret")

    def _token(self, req: ApiRequest, record: RequestRecord) -> ApiResponse:
        form = {k: v[-1] for k, v in parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        identity = self.backend.identity
        try:
            app = identity.authenticate_client(*self._client_credentials(req, form))
            record.client_id = app.client_id
            grant_type = form.get("grant_type")
            if grant_type == "refresh_token":
                if not form.get("refresh_token"):
                    raise TokenError("invalid_request")
                answer = identity.refresh(app, form["refresh_token"])
            elif grant_type == "authorization_code":
                if not form.get("code"):
                    raise TokenError("invalid_request")
                answer = identity.exchange_code(app, form["code"], form.get("redirect_uri"), form.get("code_verifier"))
            elif grant_type == "client_credentials":
                answer = identity.client_credentials(app, form.get("scope"))
            else:
                raise TokenError("unsupported_grant_type")
        except TokenError as exc:
            return json_response(400, {"error": exc.code})
        return json_response(200, answer.to_wire(), {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _revoke(self, req: ApiRequest) -> ApiResponse:
        form = {k: v[-1] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
        try:
            app = self.backend.identity.authenticate_client(*self._client_credentials(req, form))
        except TokenError as exc:
            return json_response(400, {"error": exc.code})
        self.backend.identity.revoke(app, form.get("token", ""))
        return ApiResponse(200, b"", content_type=None)

    def _connections(self, req: ApiRequest) -> ApiResponse:
        grant, failure = self._authenticate(req)
        if failure is not None or grant is None:
            return failure or self._unauthorised(None)
        event = req.param("authEventId")
        with self.backend.lock:
            rows = [{
                "id": c.connection_id, "authEventId": c.auth_event_id, "tenantId": c.tenant_id,
                "tenantType": "ORGANISATION", "tenantName": self.backend.tenants[c.tenant_id].name,
                "createdDateUtc": iso_utc(c.created), "updatedDateUtc": iso_utc(c.updated),
            } for c in self.backend.identity.connections_for(grant)
                if c.tenant_id in self.backend.tenants and (not event or c.auth_event_id == event)]
        return json_response(200, rows)

    def _disconnect(self, req: ApiRequest, connection_id: str) -> ApiResponse:
        grant, failure = self._authenticate(req)
        if failure is not None or grant is None:
            return failure or self._unauthorised(None)
        if not self.backend.identity.disconnect_by_id(grant.client_id, connection_id):
            return not_found()
        return ApiResponse(204, b"", content_type=None)

    def _authenticate(self, req: ApiRequest) -> tuple[AccessGrant | None, ApiResponse | None]:
        auth = req.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        grant = self.backend.identity.access_grant(token)
        if grant is None:
            return None, self._unauthorised(None)
        if grant.expires_at <= self.backend.clock():
            return None, self._unauthorised(grant.expires_at)
        return grant, None

    def _unauthorised(self, expired_at: float | None) -> ApiResponse:
        moment = dt.datetime.fromtimestamp(expired_at if expired_at is not None else self.backend.clock(), dt.timezone.utc)
        return problem(401, "Unauthorized", f"TokenExpired: token expired at {moment:%m/%d/%Y %H:%M:%S}",
                       {"WWW-Authenticate": "Bearer error=invalid_token"})

    # ================================================================ accounting
    def _accounting(self, req: ApiRequest, record: RequestRecord, delay: float) -> ApiResponse:
        forced = self.backend.faults.take("rate_limit_next", req.method, req.path)
        if forced is not None:
            record.fault = "rate_limit_next"
            return rate_limited(forced.problem, forced.retry_after)
        grant, failure = self._authenticate(req)
        if failure is not None or grant is None:
            return failure or self._unauthorised(None)
        record.client_id = req.client_id = grant.client_id
        tenant_id = req.headers.get("xero-tenant-id", "").strip().lower()
        if not tenant_id and grant.custom_connection and len(grant.tenant_ids) == 1:
            # A custom connection reaches one organisation: Xero needs no xero-tenant-id from it.
            tenant_id = record.tenant_id = grant.tenant_ids[0]
        if (not tenant_id or tenant_id not in grant.tenant_ids or tenant_id not in self.backend.tenants
                or not self.backend.identity.is_connected(grant.client_id, tenant_id)):
            return problem(403, "Forbidden", "AuthenticationUnsuccessful")
        segments = req.path[len(ACCOUNTING_PREFIX):].strip("/").split("/")
        sub_resource = segments[2].lower() if len(segments) > 2 else None
        if not self._scope_allows(grant.scope, segments[0].lower(), req.method, sub_resource):
            return problem(403, "Forbidden", "AuthorizationUnsuccessful")

        admission = self.backend.rate_limiter.acquire(tenant_id, grant.client_id)
        if not admission.admitted:
            return rate_limited(admission.problem or "minute", admission.retry_after, admission.headers)
        try:
            self._sleep(delay)  # inside the slot, so latency makes concurrency observable
            late = self.backend.faults.take("commit_late", req.method, req.path)
            if late is not None:
                record.fault = "commit_late"
            response = self._idempotent(req, tenant_id, record, lambda: self._route(req, tenant_id, segments),
                                        hold=late.seconds if late else 0.0)
        finally:
            self.backend.rate_limiter.release(tenant_id)
        response.headers.update(admission.headers)
        return response

    @staticmethod
    def _scope_allows(scope: str, resource: str, method: str, sub_resource: str | None = None) -> bool:
        families = SUB_RESOURCE_SCOPES.get(sub_resource or "") or SCOPES.get(resource)
        if families is None:
            return True  # unknown resources fall through to 404
        granted = set(scope.split())
        for family in families:
            if family in granted or (method == "GET" and f"{family}.read" in granted):
                return True
        return False

    def _idempotent(self, req: ApiRequest, tenant_id: str, record: RequestRecord,
                    action: Callable[[], ApiResponse], hold: float = 0.0) -> ApiResponse:
        """Replay a kept answer; refuse (409) a repeat while the first request
        with its key is still in progress; otherwise hold the key, act, keep
        the answer. ``hold`` (commit_late) waits before acting, without the
        backend lock, so other requests carry on meanwhile."""
        key = req.headers.get("idempotency-key")
        if not key or req.method not in ("PUT", "POST"):
            self._sleep(hold)
            return action()
        cache = self.backend.idempotency
        if len(key) > cache.MAX_KEY_LENGTH:
            return problem(400, "Bad Request",
                           f"The Idempotency-Key header must be {cache.MAX_KEY_LENGTH} "
                           f"characters or fewer; got {len(key)}.")
        fingerprint = cache.fingerprint(req.method, req.path, req.query_string, req.body)
        claim = cache.claim(tenant_id, key, fingerprint)
        if not claim.mine:
            first = claim.answer.fingerprint if claim.answer is not None else claim.busy_fingerprint
            if first != fingerprint:
                return problem(400, "Bad Request",
                               f"The Idempotency-Key '{key}' has already been used with a different "
                               "request; use a new key for a new request.")
            if claim.answer is None:
                return problem(409, "Conflict",
                               f"A request with the Idempotency-Key '{key}' is still being processed; "
                               "retry once it has finished.")
            record.replayed = True
            return ApiResponse(claim.answer.status, claim.answer.body, content_type=claim.answer.content_type)
        response: ApiResponse | None = None
        try:
            self._sleep(hold)
            response = action()
        finally:
            if response is not None and response.status < 500:
                cache.store(tenant_id, key, fingerprint, response.status, response.body, response.content_type)
            else:
                cache.release(tenant_id, key)
        return response

    def _route(self, req: ApiRequest, tenant_id: str, segments: list[str]) -> ApiResponse:
        resource = segments[0].lower()
        rest = segments[1:]
        method = req.method
        with self.backend.lock:
            tenant = self.backend.tenants.get(tenant_id)
            if tenant is None:  # removed (a reset) while this request waited: as if never connected
                return problem(403, "Forbidden", "AuthenticationUnsuccessful")
            ledger = Ledger(tenant, self.backend.clock)
            try:
                if method == "GET" and not rest and resource in ("organisation", "accounts", "taxrates", "currencies"):
                    return json_response(200, self._envelope(self._settings(tenant, resource)))
                if resource == "trackingcategories" and method == "GET" and len(rest) <= 1:
                    return self._tracking_categories(req, ledger, rest)
                if resource == "contacts":
                    return self._contacts(req, ledger, rest)
                if resource == "invoices":
                    return self._documents(req, ledger, INVOICE, rest)
                if resource == "creditnotes":
                    if len(rest) == 2 and rest[1].lower() == "allocations" and method == "PUT":
                        return self._allocations(req, ledger, rest[0])
                    return self._documents(req, ledger, CREDIT_NOTE, rest)
                if resource == "payments" and method == "GET" and len(rest) <= 1:
                    return self._payments(req, ledger, rest)
            except BadRequest as exc:
                return exc.response
            except OrderError as exc:
                return api_exception(16, "QueryParseException", f"Error parsing order clause: {exc}")
            except WhereError as exc:
                return api_exception(16, "QueryParseException", f"Error parsing where clause: {exc}")
            except NotFound:
                return not_found()
        return not_found()

    # ------------------------------------------------------------ settings
    def _settings(self, tenant: Tenant, resource: str) -> dict[str, Any]:
        if resource == "organisation":
            return {"Organisations": [self._organisation(tenant)]}
        if resource == "accounts":
            return {"Accounts": [{
                "AccountID": a.account_id, "Code": a.code, "Name": a.name, "Status": a.status, "Type": a.type,
                **({"TaxType": a.tax_type} if a.tax_type else {}),
                "Class": ACCOUNT_CLASSES.get(a.type, "REVENUE"), "EnablePaymentsToAccount": False,
                "ShowInExpenseClaims": False, "BankAccountType": "BANK" if a.type == "BANK" else "",
                "ReportingCode": "", "HasAttachments": False, "UpdatedDateUTC": ms_datetime(tenant.created),
                "AddToWatchlist": False,
            } for a in tenant.accounts.values()]}
        if resource == "taxrates":
            return {"TaxRates": [{
                "Name": r.name, "TaxType": r.tax_type,
                "TaxComponents": [{"Name": "GST", "Rate": round_dp(r.rate, 4), "IsCompound": False, "IsNonRecoverable": False}],
                "Status": "ACTIVE",
                **({"ReportTaxType": r.tax_type} if r.tax_type in ("OUTPUT", "EXEMPTOUTPUT", "BASEXCLUDED", "INPUT") else {}),
                "CanApplyToAssets": True, "CanApplyToEquity": True, "CanApplyToExpenses": True,
                "CanApplyToLiabilities": True, "CanApplyToRevenue": True,
                "DisplayTaxRate": round_dp(r.rate, 4), "EffectiveRate": round_dp(r.rate, 4),
            } for r in tenant.tax_rates.values()]}
        return {"Currencies": [{"Code": c, "Description": CURRENCY_NAMES.get(c, c)} for c in tenant.currencies]}

    def _tracking_categories(self, req: ApiRequest, ledger: Ledger, rest: list[str]) -> ApiResponse:
        include_archived = req.flag("includeArchived", False)
        found = ledger.find_tracking_categories(include_archived, req.param("where"), rest[0] if rest else None)
        if rest and not found:
            return not_found()
        body = {"TrackingCategories": [ledger.render_tracking_category(c, include_archived) for c in found]}
        return json_response(200, self._envelope(body))

    @staticmethod
    def _organisation(tenant: Tenant) -> dict[str, Any]:
        version, country, timezone = REGIONS.get(tenant.base_currency, ("GLOBAL", "AU", "UTC"))
        return {
            "OrganisationID": tenant.tenant_id, "APIKey": "", "Name": tenant.name, "LegalName": tenant.name,
            "PaysTax": True, "Version": version, "OrganisationType": "COMPANY", "BaseCurrency": tenant.base_currency,
            "CountryCode": country, "IsDemoCompany": False, "OrganisationStatus": "ACTIVE",
            "FinancialYearEndDay": 30, "FinancialYearEndMonth": 6, "SalesTaxBasis": "ACCRUALS",
            "SalesTaxPeriod": "QUARTERLY1", "DefaultSalesTax": "Tax Exclusive", "DefaultPurchasesTax": "Tax Exclusive",
            # "Shown if set" (the spec), as dates are: /Date(ms+0000)/ at midnight UTC.
            **({"PeriodLockDate": ms_date(tenant.period_lock_date)} if tenant.period_lock_date else {}),
            **({"EndOfYearLockDate": ms_date(tenant.end_of_year_lock_date)} if tenant.end_of_year_lock_date else {}),
            "CreatedDateUTC": ms_datetime(tenant.created), "OrganisationEntityType": "COMPANY",
            "Timezone": timezone, "ShortCode": tenant.short_code, "Class": "STANDARD", "Edition": "BUSINESS",
            "Addresses": [], "Phones": [], "ExternalLinks": [], "PaymentTerms": {},
        }

    # ------------------------------------------------------------ contacts
    def _contacts(self, req: ApiRequest, ledger: Ledger, rest: list[str]) -> ApiResponse:
        if req.method == "GET" and not rest:
            found = ledger.find_contacts(req.param("where"), req.flag("includeArchived", False),
                                         req.csv("IDs"), req.param("searchTerm"))
            found = self._modified_since(req, found, lambda c: c.updated)
            page, pagination = self._page(req, found)
            body: dict[str, Any] = {"Contacts": [ledger.render_contact(c) for c in page]}
            return json_response(200, self._envelope(body, pagination))
        if req.method == "GET" and len(rest) == 1:
            contact = ledger.t.contacts.get(rest[0].lower())
            if contact is None:
                return not_found()
            return json_response(200, self._envelope({"Contacts": [ledger.render_contact(contact)]}))
        if req.method in ("PUT", "POST") and len(rest) <= 1:
            if rest and rest[0].lower() not in ledger.t.contacts:
                return not_found()
            payloads = self._elements(req, "Contacts", single_marker="Name")
            results = ledger.save_contacts(payloads, allow_update=req.method == "POST",
                                           path_contact_id=rest[0].lower() if rest else None)
            return self._batch(req, results, "Contacts", error_flag="HasValidationErrors")
        return not_found()

    # ------------------------------------------------------------ invoices / credit notes
    def _documents(self, req: ApiRequest, ledger: Ledger, kind: DocKind, rest: list[str]) -> ApiResponse:
        """GET /Invoices and /CreditNotes take If-Modified-Since, where, order, page, pageSize and
        unitdp; /Invoices also IDs, InvoiceNumbers, ContactIDs, Statuses, createdByMyApp, summaryOnly
        and searchTerm, as Xero documents them. /CreditNotes ignores the parameters Xero does not
        document for it (createdByMyApp, summaryOnly, searchTerm…), as Xero ignores unknown ones;
        ``Statuses`` stays honoured there, as the sandbox always did."""
        unitdp = 4 if req.param("unitdp") == "4" else 2
        key = "Invoices" if kind is INVOICE else "CreditNotes"
        if req.method == "GET" and not rest:
            invoices = kind is INVOICE
            created_by = (req.client_id or "") if invoices and req.flag("createdByMyApp", False) else None
            found = ledger.find_documents(
                kind, where=req.param("where"), ids=req.csv("IDs"),
                numbers=req.csv("InvoiceNumbers") if invoices else req.csv("CreditNoteNumbers"),
                contact_ids=req.csv("ContactIDs"), statuses=req.csv("Statuses"), created_by=created_by,
                search_term=req.param("searchTerm") if invoices else None)
            found = self._modified_since(req, found, lambda d: d.updated)
            found = ledger.order_documents(kind, found, req.param("order"))
            page, pagination = self._page(req, found)
            summary_only = invoices and req.flag("summaryOnly", False)
            body = {key: [ledger.render_document(d, unitdp, summary_only=summary_only) for d in page]}
            return json_response(200, self._envelope(body, pagination))
        if req.method == "GET" and len(rest) == 1:
            doc = ledger.find_documents(kind, numbers=[rest[0]]) if kind is INVOICE else []
            target = ledger.document(kind, rest[0]) if not doc else doc[0]  # Xero accepts an ID or a number
            return json_response(200, self._envelope({key: [ledger.render_document(target, unitdp)]}))
        if req.method in ("PUT", "POST") and len(rest) <= 1:
            payloads = self._elements(req, key, single_marker="Type")
            if rest:  # POST /Invoices/{id}: the path names the document to update
                ledger.document(kind, rest[0])
                for payload in payloads:
                    if isinstance(payload, dict):
                        payload[kind.id_key] = rest[0]
            results = ledger.save_documents(kind, payloads, allow_update=req.method == "POST", unitdp=unitdp,
                                            created_by=req.client_id)
            return self._batch(req, results, key, error_flag="HasErrors")
        return not_found()

    def _payments(self, req: ApiRequest, ledger: Ledger, rest: list[str]) -> ApiResponse:
        """GET /Payments (If-Modified-Since, where, order, page, pageSize) and GET /Payments/{id}.
        DELETED payments are listed too, with their status."""
        if rest:
            found = ledger.find_payments(payment_id=rest[0])
            if not found:
                return not_found()
            return json_response(200, self._envelope({"Payments": [ledger.render_payment(found[0])]}))
        found = ledger.find_payments(where=req.param("where"))
        found = self._modified_since(req, found, lambda p: p.updated)
        found = ledger.order_payments(found, req.param("order"))
        page, pagination = self._page(req, found)
        body = {"Payments": [ledger.render_payment(p) for p in page]}
        return json_response(200, self._envelope(body, pagination))

    def _allocations(self, req: ApiRequest, ledger: Ledger, credit_note_id: str) -> ApiResponse:
        payloads = self._elements(req, "Allocations", single_marker="Amount")
        results = ledger.allocate(credit_note_id, payloads)
        return self._batch(req, results, "Allocations", error_flag=None)

    # ------------------------------------------------------------ shared helpers
    def _elements(self, req: ApiRequest, key: str, single_marker: str) -> list[Any]:
        """The body's element list: ``{"Invoices": [...]}``, or one bare element."""
        try:
            body = loads(req.body) if req.body.strip() else None
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(api_exception(14, "PostDataInvalidException", f"The request body is not valid JSON: {exc}")) from None
        if isinstance(body, dict):
            for name, value in body.items():
                if name.lower() == key.lower() and isinstance(value, list):
                    return value
            if single_marker in body or any(k.endswith("ID") for k in body):
                return [body]
        if isinstance(body, list):
            return body
        raise BadRequest(api_exception(14, "PostDataInvalidException", f"The request body must contain {key}."))

    def _batch(self, req: ApiRequest, results: list[ElementResult], key: str, error_flag: str | None) -> ApiResponse:
        """summarizeErrors=false: 200 with every element flagged. Otherwise a
        bad element turns the answer into a 400 even though the good ones
        were saved (their IDs are then lost to the caller, as in Xero)."""
        summarize = req.flag("summarizeErrors", True)
        if summarize:
            failed = [r.wire for r in results if not r.ok]
            if failed:
                return api_exception(10, "ValidationException", "A validation exception occurred", failed)
            return json_response(200, self._envelope({key: [r.wire for r in results]}))
        elements = []
        for result in results:
            wire = dict(result.wire)
            wire["StatusAttributeString"] = "OK" if result.ok else "ERROR"
            if error_flag and result.ok:
                wire[error_flag] = False
            elements.append(wire)
        return json_response(200, self._envelope({key: elements}))

    def _envelope(self, body: dict[str, Any], pagination: dict[str, int] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": "Xero Sandbox",
                               "DateTimeUTC": ms_datetime(self.backend.clock())}
        if pagination is not None:
            out["pagination"] = pagination
        out.update(body)
        return out

    # Xero pages at 100 by default and at most 1000: a larger pageSize is served 1000 a page.
    DEFAULT_PAGE_SIZE = 100
    MAX_PAGE_SIZE = 1000

    @classmethod
    def _page(cls, req: ApiRequest, items: list[Any]) -> tuple[list[Any], dict[str, int] | None]:
        """Without ``page`` the whole list and no ``pagination``; with it, that page (1 when not a
        number, or below 1) of ``pageSize`` elements (100 when absent or not a number; 1 to 1000)."""
        raw_page = req.param("page")
        if raw_page is None:
            return items, None
        try:
            page = max(1, int(raw_page))
        except ValueError:
            page = 1
        try:
            size = min(cls.MAX_PAGE_SIZE, max(1, int(req.param("pageSize") or cls.DEFAULT_PAGE_SIZE)))
        except ValueError:
            size = cls.DEFAULT_PAGE_SIZE
        start = (page - 1) * size
        pagination = {"page": page, "pageSize": size, "pageCount": math.ceil(len(items) / size),
                      "itemCount": len(items)}
        return items[start:start + size], pagination

    # Xero documents If-Modified-Since as "a UTC timestamp (yyyy-mm-ddThh:mm:ss) ... e.g. 2009-11-12T00:00:00",
    # returning what changed since it "accurate to the second". It documents no error for any other form, and
    # its own SDKs send other forms (xero-python writes isoformat(), the spec's example is
    # 2020-02-06T12:17:43.202-08:00), so Xero does not refuse them with a 400: the sandbox reads every value the
    # way the documentation defines it, the date and time as UTC, to the second, and ignores a fraction and an
    # offset (also Z, which says UTC anyway). A local time sent with its offset is then read hours off, as it
    # would be by a server that takes the documented form at its word. An HTTP-date (RFC 9110's form for this
    # header, always GMT) says its zone in the only way it can, and is read as it says.
    _XERO_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})")

    @classmethod
    def modified_since_ms(cls, raw: str | None) -> int | None:
        """The If-Modified-Since header as a UTC instant (a whole second, in milliseconds): Xero's
        yyyy-mm-ddThh:mm:ss read as UTC (a fraction or an offset after it ignored), or an HTTP date
        (``Wed, 01 Jul 2026 10:00:00 GMT``). None when absent or unreadable (then ignored)."""
        if not raw or not raw.strip():
            return None
        text = raw.strip()
        documented = cls._XERO_TIMESTAMP.match(text)
        try:
            if documented:
                since = dt.datetime(*(int(part) for part in documented.groups()), tzinfo=dt.timezone.utc)
            else:
                since = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if since.tzinfo is None:  # an HTTP date with -0000: GMT
            since = since.replace(tzinfo=dt.timezone.utc)
        since = since.replace(microsecond=0)
        return (since - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(milliseconds=1)

    @classmethod
    def _modified_since(cls, req: ApiRequest, items: list[Any], updated: Callable[[Any], float]) -> list[Any]:
        """Records whose UpdatedDateUTC, as the wire shows it (whole ms), is at or after the header's
        second: "created or modified since", inclusive, accurate to the second as Xero documents."""
        since_ms = cls.modified_since_ms(req.headers.get("if-modified-since"))
        if since_ms is None:
            return items
        return [i for i in items if int(updated(i) * 1000) >= since_ms]
