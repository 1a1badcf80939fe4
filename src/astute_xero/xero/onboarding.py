"""Onboarding a Xero connection: the first consent, and which organisations it reaches.

The authorization-code flow (RFC 6749 with PKCE, RFC 7636), as Xero runs it: the user opens the consent URL
on Xero's login site, ticks the organisations, and Xero redirects the browser to our redirect URI with a
one-time code, which is exchanged (with the client secret and the PKCE verifier) for the first access and
refresh tokens. The redirect URI must be registered with the app at developer.xero.com exactly as given.

No Airflow here: astute_xero.cli stores what this returns where the pipeline reads it.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer

import requests

from astute_xero.xero.tokens import TOKEN_TIMEOUT_S, XeroConnectionSettings, mask_tokens

AUTHORIZE_PATH = "/identity/connect/authorize"
DEFAULT_REDIRECT_URI = "http://localhost:8765/callback"


class OnboardingError(RuntimeError):
    """The consent or the code exchange failed; the message says what to do."""


@dataclass(frozen=True)
class ConsentRequest:
    url: str
    redirect_uri: str
    state: str = field(repr=False)
    code_verifier: str = field(repr=False)


@dataclass(frozen=True)
class FirstTokens:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    scope: str


def consent_request(settings: XeroConnectionSettings, redirect_uri: str, scope: str) -> ConsentRequest:
    """The URL a person opens to consent, with a fresh state (against forged redirects) and PKCE challenge."""
    state = secrets.token_urlsafe(24)
    code_verifier = secrets.token_urlsafe(64)  # 86 characters, within PKCE's 43-128
    challenge = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode("ascii")).digest()).rstrip(b"=").decode()
    query = urllib.parse.urlencode({
        "response_type": "code",
        "client_id": settings.client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }, quote_via=urllib.parse.quote)
    return ConsentRequest(f"{settings.login_url.rstrip('/')}{AUTHORIZE_PATH}?{query}", redirect_uri, state, code_verifier)


class RedirectListener:
    """A one-shot HTTP server on the redirect URI's host and port, started before the consent URL is shown
    (so a quick consent is never missed) and stopped once Xero's redirect has arrived."""

    def __init__(self, redirect_uri: str) -> None:
        parsed = urllib.parse.urlsplit(redirect_uri)
        if parsed.scheme != "http" or parsed.hostname not in {"localhost", "127.0.0.1"} or not parsed.port:
            raise OnboardingError(
                f"the redirect URI {redirect_uri!r} must be http://localhost:<port>/<path> (or 127.0.0.1), registered "
                "with the app at developer.xero.com: this command receives Xero's redirect itself.")
        self.path = parsed.path or "/"
        self._answer: dict[str, str] | None = None
        self._arrived = threading.Event()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urllib.parse.urlsplit(self.path)
                if url.path != listener.path:
                    self.send_error(404)
                    return
                listener._answer = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
                ok = "code" in listener._answer
                body = (b"<!doctype html><title>Astute - Xero</title><p>" +
                        (b"Xero has answered: you can close this window and return to the terminal."
                         if ok else b"Xero did not authorise the app: see the terminal.") + b"</p>")
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                listener._arrived.set()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the query holds the code
                pass

        try:
            self._server = HTTPServer((parsed.hostname, parsed.port), Handler)
        except OSError as error:
            raise OnboardingError(f"cannot listen on {parsed.hostname}:{parsed.port} for Xero's redirect ({error}); "
                                  "choose another port with --redirect-uri (and register it with the app).") from None
        self._thread = threading.Thread(target=self._server.serve_forever, name="xero-redirect", daemon=True)
        self._thread.start()

    def wait_for_code(self, request: ConsentRequest, timeout_s: float) -> str:
        """The authorization code of this consent; an error, a forged state or no answer raise OnboardingError."""
        try:
            if not self._arrived.wait(timeout_s):
                raise OnboardingError(f"no redirect from Xero within {timeout_s:g} s: open the consent URL, log in, "
                                      "tick the organisations and press Allow access; then run the command again.")
        finally:
            self._server.shutdown()
            self._server.server_close()
        answer = self._answer or {}
        if not secrets.compare_digest(answer.get("state", ""), request.state):
            raise OnboardingError("the redirect's state does not match this consent request (a stale or forged "
                                  "redirect): nothing was stored; run the command again.")
        if "error" in answer:
            reasons = {
                "access_denied": "the user did not allow access (or ticked no organisation)",
                "invalid_scope": "Xero refused a scope: an app created since 2 March 2026 must use the granular "
                                 "scopes (the default); an older app may need --classic-scopes",
                "unauthorized_client": "the app may not use this flow or redirect URI",
            }
            code = answer["error"]
            raise OnboardingError(f"Xero answered {code}: {reasons.get(code, answer.get('error_description', code))}.")
        if not answer.get("code"):
            raise OnboardingError("Xero's redirect carried no code; run the command again.")
        return answer["code"]


def exchange_code(settings: XeroConnectionSettings, request: ConsentRequest, code: str) -> FirstTokens:
    """The first tokens, for the code (one use, minutes to live) and this request's PKCE verifier."""
    try:
        response = requests.post(
            settings.token_url,
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": request.redirect_uri,
                  "code_verifier": request.code_verifier},
            auth=(settings.client_id, settings.client_secret),
            timeout=TOKEN_TIMEOUT_S,
        )
    except requests.RequestException as error:
        raise OnboardingError(f"no answer from Xero's token endpoint ({type(error).__name__}): run the command "
                              "again (a code is good for one try only).") from None
    if response.status_code != 200:
        try:
            detail = response.json().get("error", "")
        except ValueError:
            detail = ""
        hints = {
            "invalid_client": "the client id or secret is wrong",
            "invalid_grant": "the code was used already, expired, or belongs to another redirect URI",
        }
        raise OnboardingError(f"Xero refused the code exchange (HTTP {response.status_code} {detail}): "
                              f"{hints.get(detail, 'see the message')}. Nothing was stored.")
    answer = response.json()
    mask_tokens(answer.get("access_token"), answer.get("refresh_token"), answer.get("id_token"))
    if not answer.get("refresh_token"):
        raise OnboardingError("Xero gave no refresh token: the scopes must include offline_access. Nothing was stored.")
    return FirstTokens(answer["access_token"], answer["refresh_token"], answer.get("scope", ""))


def list_connections(settings: XeroConnectionSettings, access_token: str) -> list[dict[str, str]]:
    """GET /connections with a bare access token (right after consent, before the pipeline's chain exists)."""
    response = requests.get(settings.api_url.rstrip("/") + "/connections",
                            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
                            timeout=TOKEN_TIMEOUT_S)
    response.raise_for_status()
    return response.json()


# ---------------------------------------------------------------------------------------------- the tenant list
@dataclass(frozen=True)
class BillingEntity:
    id: int
    name: str
    xero_tenant_id: str | None
    live: bool


@dataclass(frozen=True)
class ReachedOrganisation:
    tenant_id: str
    name: str
    entities: tuple[BillingEntity, ...]


@dataclass(frozen=True)
class TenantCheck:
    """Xero's tenant list beside Astute's billing entities."""

    reached: tuple[ReachedOrganisation, ...]
    unreachable: tuple[BillingEntity, ...]  # points at an organisation this connection does not reach
    unlinked: tuple[BillingEntity, ...]  # no xero_tenant_id: not exported

    @property
    def unused(self) -> tuple[ReachedOrganisation, ...]:
        return tuple(org for org in self.reached if not org.entities)

    @property
    def ok(self) -> bool:
        return not self.unreachable


def check_tenants(connections: list[dict[str, str]], entities: list[BillingEntity]) -> TenantCheck:
    """Which entity exports to which reached organisation (tenant ids compare case-insensitively, as Xero's
    GUIDs do), which entity points at one the connection cannot reach, and which are not linked at all."""
    by_tenant: dict[str, list[BillingEntity]] = {}
    for entity in entities:
        if entity.xero_tenant_id:
            by_tenant.setdefault(entity.xero_tenant_id.strip().lower(), []).append(entity)
    reached_ids = {c["tenantId"].lower() for c in connections}
    reached = tuple(
        ReachedOrganisation(c["tenantId"], c.get("tenantName") or "", tuple(by_tenant.get(c["tenantId"].lower(), ())))
        for c in sorted(connections, key=lambda c: (c.get("tenantName") or "").lower())
    )
    unreachable = tuple(e for tenant, group in sorted(by_tenant.items()) if tenant not in reached_ids for e in group)
    return TenantCheck(reached, tuple(sorted(unreachable, key=lambda e: e.id)),
                       tuple(e for e in entities if not e.xero_tenant_id))


def render_tenant_check(check: TenantCheck, connection_id: str) -> str:
    def entity(e: BillingEntity) -> str:
        return f"{e.name} (billing entity {e.id}{'' if e.live else ', not live: no xero_go_live_date'})"

    lines = [f"Xero organisations reached by connection '{connection_id}': {len(check.reached)}"]
    for org in check.reached:
        users = ", ".join(entity(e) for e in org.entities) or "no billing entity uses it"
        lines.append(f"  {org.name}  tenant {org.tenant_id}  <- {users}")
    if check.unreachable:
        lines.append(f"Billing entities pointing at an organisation this connection does not reach: {len(check.unreachable)}")
        for e in check.unreachable:
            lines.append(f"  {entity(e)}: xero_tenant_id {e.xero_tenant_id} is not among the organisations above. "
                         "Nothing of this entity can be exported: correct billing_entity.xero_tenant_id to one of "
                         "the tenant ids above, or connect that organisation (astute-xero authorise, ticking it).")
    if check.unused:
        lines.append(f"Organisations reached that no billing entity uses: {len(check.unused)} "
                     f"({', '.join(f'{o.name} {o.tenant_id}' for o in check.unused)}); nothing is exported to them.")
    if check.unlinked:
        lines.append(f"Billing entities not linked to Xero (no xero_tenant_id): "
                     f"{', '.join(entity(e) for e in check.unlinked)}")
    lines.append("OK: every linked billing entity reaches its organisation." if check.ok else
                 "NOT OK: fix the entities listed above.")
    return "\n".join(lines)
