"""OAuth2 rules of Xero's identity service: apps, consent, rotating refresh
tokens, access tokens and connections. No HTTP here."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from dataclasses import dataclass
from typing import Callable

from .records import AccessGrant, App, Connection, Limits, RefreshGrant, new_id

DEFAULT_SCOPE = "offline_access accounting.transactions accounting.contacts accounting.settings"


class TokenError(Exception):
    """An OAuth2 error answered as HTTP 400 ``{"error": <code>}``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class TokenResponse:
    id_token: str
    access_token: str
    expires_in: int
    refresh_token: str | None
    scope: str

    def to_wire(self) -> dict[str, object]:
        # Exactly Xero's keys; client_credentials answers carry no refresh token.
        body: dict[str, object] = {
            "id_token": self.id_token,
            "access_token": self.access_token,
            "expires_in": self.expires_in,
            "token_type": "Bearer",
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        body["scope"] = self.scope
        return body


class IdentityStore:
    """Apps, grants and connections. Thread-safe through one lock."""

    def __init__(self, clock: Callable[[], float], limits: Limits) -> None:
        self._clock = clock
        self._limits = limits
        self._lock = threading.RLock()
        self.apps: dict[str, App] = {}
        self.refresh_grants: dict[str, RefreshGrant] = {}
        self.access_grants: dict[str, AccessGrant] = {}
        self.connections: dict[tuple[str, str], Connection] = {}

    def reset(self) -> None:
        with self._lock:
            self.apps.clear()
            self.refresh_grants.clear()
            self.access_grants.clear()
            self.connections.clear()

    # ------------------------------------------------------------ set-up
    def register_app(self, client_id: str, client_secret: str, custom_tenant_id: str | None = None) -> None:
        with self._lock:
            self.apps[client_id] = App(client_id, client_secret, custom_tenant_id)

    def authorise(self, client_id: str, tenant_ids: list[str], scope: str) -> str:
        """A user consents: connections are (re)made and a new chain starts."""
        with self._lock:
            if client_id not in self.apps:
                raise KeyError(f"unknown app {client_id!r}: call register_app first")
            now = self._clock()
            auth_event_id = new_id()
            for tenant_id in tenant_ids:
                key = (client_id, tenant_id)
                existing = self.connections.get(key)
                if existing:
                    existing.updated, existing.auth_event_id = now, auth_event_id
                else:
                    self.connections[key] = Connection(new_id(), auth_event_id, tenant_id, now, now)
            grant = RefreshGrant(
                token=_opaque(), client_id=client_id, tenant_ids=list(tenant_ids),
                scope=scope, auth_event_id=auth_event_id, issued=now,
            )
            self.refresh_grants[grant.token] = grant
            return grant.token

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
            )
            grant.children.append(child.token)
            self.refresh_grants[child.token] = child
            access = self._issue_access(app.client_id, grant.tenant_ids, grant.scope, grant.auth_event_id)
            return TokenResponse(_id_token(app.client_id, now), access.token,
                                 self._limits.access_token_ttl_s, child.token, grant.scope)

    def client_credentials(self, app: App, scope: str | None) -> TokenResponse:
        """Custom connections: one organisation, an access token only."""
        with self._lock:
            if not app.custom_tenant_id:
                raise TokenError("unauthorized_client")
            tenant_id = app.custom_tenant_id
            now = self._clock()
            key = (app.client_id, tenant_id)
            if key not in self.connections:
                self.connections[key] = Connection(new_id(), new_id(), tenant_id, now, now)
            granted = scope or DEFAULT_SCOPE.replace("offline_access ", "")
            access = self._issue_access(app.client_id, [tenant_id], granted, self.connections[key].auth_event_id)
            return TokenResponse(_id_token(app.client_id, now), access.token,
                                 self._limits.access_token_ttl_s, None, granted)

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
    def _issue_access(self, client_id: str, tenant_ids: list[str], scope: str, auth_event_id: str) -> AccessGrant:
        grant = AccessGrant(_opaque(), client_id, list(tenant_ids), scope,
                            self._clock() + self._limits.access_token_ttl_s, auth_event_id)
        self.access_grants[grant.token] = grant
        return grant

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


def _id_token(client_id: str, now: float) -> str:
    """A JWT-shaped but unsigned id token; nothing should rely on it."""
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    claims = {"iss": "xero-sandbox", "aud": client_id, "iat": int(now), "sub": new_id()}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sandbox"
