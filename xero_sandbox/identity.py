"""OAuth2 rules of Xero's identity service: apps, consent, authorization
codes, rotating refresh tokens, access tokens and connections. No HTTP here."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import secrets
import threading
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from .records import AccessGrant, App, AuthorizationCode, Connection, Limits, RefreshGrant, new_id

DEFAULT_SCOPE = "offline_access accounting.transactions accounting.contacts accounting.settings"
# What a custom connection is granted when its set-up names no scopes, by the kind of app.
CUSTOM_CONNECTION_SCOPE = "accounting.transactions accounting.contacts accounting.settings"
CUSTOM_CONNECTION_GRANULAR_SCOPE = "accounting.invoices accounting.payments accounting.contacts accounting.settings"


def _with_read(*names: str) -> frozenset[str]:
    return frozenset(names) | frozenset(f"{name}.read" for name in names)


# The user's own scopes: they open no organisation, so asking only for them connects none.
USER_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
# Broad scopes, refused to apps created on or after 2 March 2026.
BROAD_SCOPES = frozenset({"accounting.transactions", "accounting.transactions.read", "accounting.reports.read"})
# Their granular successors, which older apps may ask for as well.
GRANULAR_SCOPES = _with_read(
    "accounting.invoices", "accounting.payments", "accounting.banktransactions",
    "accounting.manualjournals", "accounting.classicexpenses",
) | frozenset(f"accounting.reports.{report}.read" for report in (
    "aged", "balancesheet", "banksummary", "budgetsummary", "executivesummary", "profitandloss",
    "trialbalance", "taxreports",
))
# Accounting scopes that every app may ask for.
SHARED_SCOPES = _with_read("accounting.contacts", "accounting.settings", "accounting.attachments") | frozenset({
    "accounting.journals.read", "accounting.budgets.read", "accounting.reports.tenninetynine.read",
})
# The sandbox fakes the Accounting API only: payroll, files, assets and the rest are unknown here.
ORGANISATION_SCOPES = BROAD_SCOPES | GRANULAR_SCOPES | SHARED_SCOPES
MAX_REDIRECT_URIS = 50
# RFC 7636: a verifier (and an S256 challenge) is 43 to 128 unreserved characters.
_PKCE_VALUE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


class TokenError(Exception):
    """An OAuth2 error answered as HTTP 400 ``{"error": <code>}``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class AuthorizeError(Exception):
    """A refusal at the authorization endpoint. With ``redirect`` the user is sent back to the
    app's redirect URI with ``?error=<code>``; without, the client or its redirect URI cannot be
    trusted, so Xero shows its own error page and never redirects."""

    def __init__(self, code: str, description: str, redirect: bool) -> None:
        super().__init__(f"{code}: {description}")
        self.code, self.description, self.redirect = code, description, redirect


@dataclass
class TokenResponse:
    id_token: str | None
    access_token: str
    expires_in: int
    refresh_token: str | None
    scope: str

    def to_wire(self) -> dict[str, object]:
        # Exactly Xero's keys. A refresh token only with offline_access (never for client
        # credentials); an id_token only when a user signed in with openid (never for client
        # credentials, which have no user).
        body: dict[str, object] = {}
        if self.id_token is not None:
            body["id_token"] = self.id_token
        body.update({"access_token": self.access_token, "expires_in": self.expires_in, "token_type": "Bearer"})
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        body["scope"] = self.scope
        return body


class IdentityStore:
    """Apps, consents, codes, grants and connections. Thread-safe through one lock."""

    def __init__(self, clock: Callable[[], float], limits: Limits) -> None:
        self._clock = clock
        self._limits = limits
        self._lock = threading.RLock()
        self.apps: dict[str, App] = {}
        # client_id -> the organisations the user who signs in ticks; absent: the user cancels.
        self.consents: dict[str, list[str]] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.refresh_grants: dict[str, RefreshGrant] = {}
        self.access_grants: dict[str, AccessGrant] = {}
        self.connections: dict[tuple[str, str], Connection] = {}

    def reset(self) -> None:
        with self._lock:
            self.apps.clear()
            self.consents.clear()
            self.codes.clear()
            self.refresh_grants.clear()
            self.access_grants.clear()
            self.connections.clear()

    # ------------------------------------------------------------ set-up
    def register_app(self, client_id: str, client_secret: str, custom_tenant_id: str | None = None, *,
                     redirect_uris: list[str] | None = None, created: dt.date | None = None,
                     scope: str | None = None) -> App:
        """An app as made at developer.xero.com. ``redirect_uris``: the exact URIs the authorization
        endpoint may send users back to (https, or http on localhost; at most 50). ``created``: the
        day the app was made; from 2 March 2026 it may ask only for granular scopes (default: an
        older app). ``custom_tenant_id`` makes it a custom connection, authorised by that
        organisation for ``scope`` (default: the usual accounting scopes of its kind of app); the
        connection exists from now on, as it does once the organisation's admin has authorised it."""
        uris = list(redirect_uris or [])
        if len(uris) > MAX_REDIRECT_URIS:
            raise ValueError(f"an app has at most {MAX_REDIRECT_URIS} redirect URIs")
        for uri in uris:
            _check_redirect_uri(uri)
        app = App(client_id, client_secret, custom_tenant_id.lower() if custom_tenant_id else None, uris)
        if created is not None:
            app.created = created
        if app.custom_tenant_id:
            default = CUSTOM_CONNECTION_GRANULAR_SCOPE if app.granular_scopes_only else CUSTOM_CONNECTION_SCOPE
            granted = _split(scope or default)
            if not granted or USER_SCOPES & set(granted):
                raise ValueError("a custom connection is granted organisation scopes only (no user, no refresh token)")
            refused = _refused_scopes(app, granted)
            if refused:
                raise ValueError(f"invalid_scope: {' '.join(refused)} cannot be granted to this app")
            app.scope = " ".join(granted)
        elif scope is not None:
            raise ValueError("only a custom connection is granted scopes up front; "
                             "other apps ask for them at the authorization endpoint")
        with self._lock:
            self.apps[client_id] = app
            if app.custom_tenant_id:
                # One organisation per custom connection: re-registering moves it.
                now = self._clock()
                for client, tenant in list(self.connections):
                    if client == client_id and tenant != app.custom_tenant_id:
                        del self.connections[(client, tenant)]
                key = (client_id, app.custom_tenant_id)
                if key not in self.connections:
                    self.connections[key] = Connection(new_id(), new_id(), app.custom_tenant_id, now, now)
            return app

    def set_consent(self, client_id: str, tenant_ids: list[str] | None) -> None:
        """What the person who signs in at the authorization endpoint does for this app, from now
        on: tick ``tenant_ids`` and allow access (an empty list allows with no organisation), or,
        with None (as before any consent is set), cancel, which is answered ``access_denied``."""
        with self._lock:
            if client_id not in self.apps:
                raise KeyError(f"unknown app {client_id!r}: call register_app first")
            if tenant_ids is None:
                self.consents.pop(client_id, None)
            else:
                self.consents[client_id] = [t.lower() for t in tenant_ids]

    def authorise(self, client_id: str, tenant_ids: list[str], scope: str, refresh_token: str | None = None) -> str:
        """A user consents (the whole browser round trip, as a shortcut): connections are (re)made
        and a new chain starts. ``refresh_token``: the chain's first token, for a sandbox that must
        honour a consent made before it started (a deployment's configured connection); else random."""
        with self._lock:
            app = self.apps.get(client_id)
            if app is None:
                raise KeyError(f"unknown app {client_id!r}: call register_app first")
            refused = _refused_scopes(app, _split(scope))
            if refused:
                raise ValueError(f"invalid_scope: app {client_id!r} may not ask for {' '.join(refused)}")
            now = self._clock()
            auth_event_id = self._connect(client_id, tenant_ids, now)
            if refresh_token is not None and refresh_token in self.refresh_grants:
                raise ValueError("that refresh token is already a link of a chain")
            grant = RefreshGrant(
                token=refresh_token or _opaque(), client_id=client_id, tenant_ids=list(tenant_ids),
                scope=scope, auth_event_id=auth_event_id, issued=now,
            )
            self.refresh_grants[grant.token] = grant
            return grant.token

    # ------------------------------------------------------------ authorization code
    def authorize(self, client_id: str | None, redirect_uri: str | None, response_type: str | None,
                  scope: str | None, code_challenge: str | None = None,
                  code_challenge_method: str | None = None) -> AuthorizationCode:
        """The authorization endpoint, once the user has signed in and answered the consent
        screen as ``set_consent`` says. Checks go in the order that decides who hears of a
        failure: first whether the client and its redirect URI can be trusted (else no redirect),
        then everything else (redirected as ``?error=``)."""
        with self._lock:
            app = self.apps.get(client_id or "")
            if app is None:
                raise AuthorizeError("unauthorized_client", "Unknown client or client not enabled", redirect=False)
            # Exact string match (RFC 6749 3.1.2; Xero allows no wildcards): no case folding, no
            # trailing-slash or port leniency.
            if not redirect_uri or redirect_uri not in app.redirect_uris:
                raise AuthorizeError("unauthorized_client", "Invalid redirect_uri", redirect=False)
            if app.custom_tenant_id:
                raise AuthorizeError("unauthorized_client", "Invalid grant type for client", redirect=True)
            if response_type != "code":
                raise AuthorizeError("unsupported_response_type", "Only response_type=code is supported", redirect=True)
            requested = _split(scope or "")
            if not requested:
                raise AuthorizeError("invalid_scope", "No scope requested", redirect=True)
            refused = _refused_scopes(app, requested)
            if refused:
                raise AuthorizeError("invalid_scope", f"Invalid scope for client: {' '.join(refused)}", redirect=True)
            if code_challenge is None and code_challenge_method is not None:
                raise AuthorizeError("invalid_request", "code_challenge is missing", redirect=True)
            if code_challenge is not None:
                # RFC 7636 makes "plain" the default method; Xero asks for S256 and so does the sandbox.
                if code_challenge_method != "S256":
                    raise AuthorizeError("invalid_request", "code_challenge_method must be S256", redirect=True)
                if not _PKCE_VALUE.match(code_challenge):
                    raise AuthorizeError("invalid_request", "Invalid code_challenge", redirect=True)
            consent = self.consents.get(app.client_id)
            if consent is None:
                raise AuthorizeError("access_denied", "The user did not allow access", redirect=True)
            # Organisations are chosen only when some scope reaches into one (not for sign-in alone).
            tenants = list(consent) if set(requested) - USER_SCOPES else []
            grant = AuthorizationCode(
                code=_opaque(), client_id=app.client_id, redirect_uri=redirect_uri, scope=" ".join(requested),
                tenant_ids=tenants, issued=self._clock(), code_challenge=code_challenge,
            )
            self.codes[grant.code] = grant
            return grant

    def exchange_code(self, app: App, code: str, redirect_uri: str | None, code_verifier: str | None) -> TokenResponse:
        """``grant_type=authorization_code``. A code is single use, and any attempt by the client
        it was issued to spends it, even one that then fails: Xero does not say whether a failed
        exchange leaves the code usable, so the sandbox takes the stricter reading (IdentityServer's,
        which removes a code as soon as its client presents it) and a client cannot count on
        retrying an exchange with corrected parameters. Another client's attempt spends nothing."""
        with self._lock:
            grant = self.codes.get(code)
            if grant is None or grant.client_id != app.client_id:
                raise TokenError("invalid_grant")
            del self.codes[code]
            now = self._clock()
            if now - grant.issued > self._limits.authorization_code_ttl_s:
                raise TokenError("invalid_grant")
            if redirect_uri != grant.redirect_uri:
                raise TokenError("invalid_grant")
            if grant.code_challenge is not None:
                if not code_verifier or not _PKCE_VALUE.match(code_verifier):
                    raise TokenError("invalid_grant")
                if not secrets.compare_digest(_s256(code_verifier), grant.code_challenge):
                    raise TokenError("invalid_grant")
            elif code_verifier:
                raise TokenError("invalid_grant")  # a verifier for a code that had no challenge
            scopes = set(grant.scope.split())
            auth_event_id = self._connect(app.client_id, grant.tenant_ids, now) if grant.tenant_ids else new_id()
            refresh_token: str | None = None
            if "offline_access" in scopes:
                chain = RefreshGrant(
                    token=_opaque(), client_id=app.client_id, tenant_ids=list(grant.tenant_ids), scope=grant.scope,
                    auth_event_id=auth_event_id, issued=now, id_token="openid" in scopes,
                )
                self.refresh_grants[chain.token] = chain
                refresh_token = chain.token
            access = self._issue_access(app.client_id, grant.tenant_ids, grant.scope, auth_event_id)
            return TokenResponse(_id_token(app.client_id, now) if "openid" in scopes else None, access.token,
                                 self._limits.access_token_ttl_s, refresh_token, grant.scope)

    # ------------------------------------------------------------ grants
    def authenticate_client(self, client_id: str | None, client_secret: str | None) -> App:
        app = self.apps.get(client_id or "")
        if app is None or not secrets.compare_digest(app.client_secret, client_secret or ""):
            raise TokenError("invalid_client")
        return app

    def refresh(self, app: App, refresh_token: str) -> TokenResponse:
        """Rotate: the presented token gives way to a new one. A token already
        exchanged may be presented again within the grace window (the answer
        may have been lost) as long as none of its successors has been used;
        that keeps the chain alive by issuing another successor."""
        with self._lock:
            now = self._clock()
            grant = self.refresh_grants.get(refresh_token)
            if grant is None or grant.dead or grant.client_id != app.client_id:
                raise TokenError("invalid_grant")
            if grant.used_at is None:
                if now - grant.issued > self._limits.refresh_token_ttl_s:
                    raise TokenError("invalid_grant")
                grant.used_at = now
                self._retire_ancestors(grant)
            else:
                since_use = now - grant.used_at
                if since_use > self._limits.refresh_grace_s:
                    raise TokenError("invalid_grant")
                if since_use < self._limits.refresh_race_window_s:
                    raise TokenError("invalid_grant")
            child = RefreshGrant(
                token=_opaque(), client_id=grant.client_id, tenant_ids=list(grant.tenant_ids),
                scope=grant.scope, auth_event_id=grant.auth_event_id, issued=now, parent=grant.token,
                id_token=grant.id_token,
            )
            grant.children.append(child.token)
            self.refresh_grants[child.token] = child
            access = self._issue_access(app.client_id, grant.tenant_ids, grant.scope, grant.auth_event_id)
            return TokenResponse(_id_token(app.client_id, now) if grant.id_token else None, access.token,
                                 self._limits.access_token_ttl_s, child.token, grant.scope)

    def client_credentials(self, app: App, scope: str | None) -> TokenResponse:
        """Custom connections: one organisation, an access token only (no user, so no id_token;
        no refresh token). The token carries the scopes the organisation authorised, or the
        subset asked for; a scope it did not authorise is ``invalid_scope``. A connection the
        organisation has disconnected is not brought back: its calls stay 403 until the app is
        authorised again (``register_app``)."""
        with self._lock:
            if not app.custom_tenant_id or app.scope is None:
                raise TokenError("unauthorized_client")
            granted = app.scope.split()
            requested = _split(scope) if scope and scope.strip() else granted
            if any(s not in granted for s in requested):
                raise TokenError("invalid_scope")
            connection = self.connections.get((app.client_id, app.custom_tenant_id))
            access = self._issue_access(app.client_id, [app.custom_tenant_id], " ".join(requested),
                                        connection.auth_event_id if connection else new_id(),
                                        custom_connection=True)
            return TokenResponse(None, access.token, self._limits.access_token_ttl_s, None, access.scope)

    def revoke(self, app: App, token: str) -> None:
        """Revoking a refresh token kills its whole chain and the app's connections."""
        with self._lock:
            grant = self.refresh_grants.get(token)
            if grant is None or grant.client_id != app.client_id:
                return  # RFC 7009: unknown tokens are not an error
            for other in self.refresh_grants.values():
                if other.auth_event_id == grant.auth_event_id:
                    other.dead = True
            for access in self.access_grants.values():
                if access.auth_event_id == grant.auth_event_id:
                    access.expires_at = min(access.expires_at, self._clock())
            for tenant_id in grant.tenant_ids:
                self.connections.pop((app.client_id, tenant_id), None)

    def disconnect(self, client_id: str, tenant_id: str) -> None:
        """Remove one organisation's connection; tokens live on for the others."""
        with self._lock:
            if self.connections.pop((client_id, tenant_id), None) is None:
                raise KeyError(f"app {client_id!r} is not connected to tenant {tenant_id}")

    def disconnect_by_id(self, client_id: str, connection_id: str) -> bool:
        """``DELETE /connections/{id}``: False when the app has no such connection."""
        with self._lock:
            for (client, tenant), connection in list(self.connections.items()):
                if client == client_id and connection.connection_id == connection_id.lower():
                    del self.connections[(client, tenant)]
                    return True
            return False

    # ------------------------------------------------------------ lookups
    def access_grant(self, token: str | None) -> AccessGrant | None:
        with self._lock:
            return self.access_grants.get(token or "")

    def expire_access_tokens(self) -> int:
        with self._lock:
            now = self._clock()
            for grant in self.access_grants.values():
                grant.expires_at = min(grant.expires_at, now - 1)
            return len(self.access_grants)

    def connections_for(self, grant: AccessGrant) -> list[Connection]:
        with self._lock:
            return [c for (client, tenant), c in self.connections.items()
                    if client == grant.client_id and tenant in grant.tenant_ids]

    def is_connected(self, client_id: str, tenant_id: str) -> bool:
        with self._lock:
            return (client_id, tenant_id) in self.connections

    # ------------------------------------------------------------ internals
    def _issue_access(self, client_id: str, tenant_ids: list[str], scope: str, auth_event_id: str,
                      custom_connection: bool = False) -> AccessGrant:
        grant = AccessGrant(_opaque(), client_id, list(tenant_ids), scope,
                            self._clock() + self._limits.access_token_ttl_s, auth_event_id, custom_connection)
        self.access_grants[grant.token] = grant
        return grant

    def _connect(self, client_id: str, tenant_ids: list[str], now: float) -> str:
        """One consent: its organisations are (re)connected under a new auth event id, which
        ``GET /connections?authEventId=`` then finds."""
        auth_event_id = new_id()
        for tenant_id in tenant_ids:
            key = (client_id, tenant_id)
            existing = self.connections.get(key)
            if existing:
                existing.updated, existing.auth_event_id = now, auth_event_id
            else:
                self.connections[key] = Connection(new_id(), auth_event_id, tenant_id, now, now)
        return auth_event_id

    def _retire_ancestors(self, grant: RefreshGrant) -> None:
        """Using a token proves its predecessor's answer arrived: the
        predecessor and any sibling issued by a grace reuse die."""
        parent = self.refresh_grants.get(grant.parent or "")
        if parent is None:
            return
        parent.dead = True
        for sibling in parent.children:
            if sibling != grant.token and sibling in self.refresh_grants:
                self.refresh_grants[sibling].dead = True


def _opaque() -> str:
    return secrets.token_urlsafe(32)


def _split(scope: str) -> list[str]:
    """Space-separated scopes, each once, in the order given."""
    return list(dict.fromkeys(scope.split()))


def _refused_scopes(app: App, requested: list[str]) -> list[str]:
    """The scopes this app may not ask for: unknown ones, and the broad ones once granular
    scopes are required of it."""
    allowed = USER_SCOPES | ORGANISATION_SCOPES
    if app.granular_scopes_only:
        allowed = allowed - BROAD_SCOPES
    return [s for s in requested if s not in allowed]


def _s256(verifier: str) -> str:
    """PKCE's S256: BASE64URL(SHA256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def _check_redirect_uri(uri: str) -> None:
    """Xero takes absolute URIs only, https except on localhost, and no wildcards."""
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment or "*" in uri:
        raise ValueError(f"redirect URI {uri!r} must be an absolute http(s) URI without fragment or wildcard")
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise ValueError(f"redirect URI {uri!r} must be https (plain http is for localhost only)")


def _id_token(client_id: str, now: float) -> str:
    """A JWT-shaped but unsigned id token; nothing should rely on it."""
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    claims = {"iss": "xero-sandbox", "aud": client_id, "iat": int(now), "sub": new_id()}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sandbox"
