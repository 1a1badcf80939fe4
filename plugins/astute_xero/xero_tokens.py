"""One OAuth2 token chain per Xero connection, shared by every worker through the database.

Xero's refresh tokens rotate: each refresh returns a new one and the old one
dies (after a 30-minute grace). Two workers refreshing at once would break the
chain, so refreshes are serialised by a row lock on xero_sync.oauth_token, the
new refresh token is committed before the new access token is used, and the
refresh token in the Airflow connection only starts the chain (or restarts it
when someone re-authorises and puts a new one there).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from astute_xero.sql import load_sql

# Refresh well before expiry so that the SDK (which refreshes by itself under 60 s) never has to.
REFRESH_MARGIN = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class XeroConnectionSettings:
    """The Airflow connection xero_default, resolved. Secrets are kept out of repr()."""

    connection_id: str
    client_id: str
    client_secret: str = field(repr=False)
    seed_refresh_token: str = field(repr=False)
    api_url: str = "https://api.xero.com"
    identity_url: str = "https://identity.xero.com"
    scope: str = "offline_access accounting.transactions accounting.contacts accounting.settings"

    @property
    def accounting_base_url(self) -> str:
        return self.api_url.rstrip("/") + "/api.xro/2.0"

    @property
    def token_url(self) -> str:
        return self.identity_url.rstrip("/") + "/connect/token"


@dataclass(frozen=True)
class TokenGrant:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    scope: str


class XeroAuthorisationError(RuntimeError):
    """The token chain is broken: a person must re-authorise the Xero app. Never retried silently."""


RefreshCall = Callable[[XeroConnectionSettings, str], TokenGrant]


def fingerprint(secret: str) -> str:
    """A one-way tag of a refresh token, to notice a re-authorised connection without storing it twice."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    expires_at: dt.datetime
    scope: str


class TokenStore:
    """Hands out a valid access token, refreshing the shared chain at most once at a time."""

    def __init__(self, connect: Callable[[], psycopg.Connection], settings: XeroConnectionSettings, refresh: RefreshCall):
        self._connect = connect
        self._settings = settings
        self._refresh = refresh

    def access_token(self, *, force_refresh: bool = False, rejected: str | None = None) -> AccessToken:
        """A token valid for at least REFRESH_MARGIN. `rejected` is a token Xero just refused (401)."""
        with self._connect() as conn:
            row = conn.execute(load_sql("token_read"), {"connection_id": self._settings.connection_id}).fetchone()
            if row and not force_refresh and self._usable(row):
                return AccessToken(row[0], row[1], row[2] or self._settings.scope)
            return self._refresh_locked(conn, rejected)

    def _usable(self, row: tuple) -> bool:
        access_token, expires_at, _scope, seed = row
        now = dt.datetime.now(dt.timezone.utc)
        return (
            access_token is not None
            and expires_at is not None
            and expires_at - now > REFRESH_MARGIN
            and seed == fingerprint(self._settings.seed_refresh_token)
        )

    def _refresh_locked(self, conn: psycopg.Connection, rejected: str | None) -> AccessToken:
        settings = self._settings
        seed = fingerprint(settings.seed_refresh_token)
        with conn.transaction():
            conn.execute(
                load_sql("token_seed"),
                {"connection_id": settings.connection_id, "seed": seed, "refresh_token": settings.seed_refresh_token},
            )
            access_token, expires_at, scope, stored_seed, refresh_token = conn.execute(
                load_sql("token_lock"), {"connection_id": settings.connection_id}
            ).fetchone()
            if stored_seed != seed:
                # Someone re-authorised and put a new refresh token in the connection: start the chain anew.
                refresh_token, access_token = settings.seed_refresh_token, None
            now = dt.datetime.now(dt.timezone.utc)
            if (
                access_token is not None
                and access_token != rejected
                and expires_at is not None
                and expires_at - now > REFRESH_MARGIN
            ):
                return AccessToken(access_token, expires_at, scope or settings.scope)  # another worker refreshed
            grant = self._refresh(settings, refresh_token)
            expires_at = now + dt.timedelta(seconds=grant.expires_in)
            conn.execute(
                load_sql("token_store"),
                {
                    "connection_id": settings.connection_id,
                    "seed": seed,
                    "refresh_token": grant.refresh_token,
                    "access_token": grant.access_token,
                    "expires_at": expires_at,
                    "scope": grant.scope,
                },
            )
        # Committed: the new refresh token is safe before the new access token is used.
        return AccessToken(grant.access_token, expires_at, grant.scope)


def refresh_with_sdk(settings: XeroConnectionSettings, refresh_token: str) -> TokenGrant:
    """Refresh through xero-python's TokenApi, pointed at the connection's identity URL."""
    import urllib3
    from xero_python.api_client import ApiClient, Configuration
    from xero_python.api_client.oauth2 import TokenApi
    from xero_python.exceptions import ApiException

    from astute_xero.xero_client import harden

    api_client = harden(ApiClient(Configuration()))
    token_api = TokenApi(api_client, settings.client_id, settings.client_secret)
    token_api.refresh_token_url = settings.token_url
    try:
        answer = token_api.refresh_token(refresh_token, settings.scope.split())
    except ApiException as error:
        detail = _error_code(error.body)
        if error.status == 400 and detail in {"invalid_grant", "invalid_client", "unauthorized_client"}:
            raise XeroAuthorisationError(
                f"Xero refused to refresh the token of connection '{settings.connection_id}' ({detail}). "
                "The token chain is broken: re-authorise the Xero app and put the new refresh token in the "
                f"connection's extra 'refresh_token' (airflow connections / AIRFLOW_CONN_{settings.connection_id.upper()})."
            ) from None
        raise RuntimeError(
            f"Xero's token endpoint answered HTTP {error.status} for connection '{settings.connection_id}'."
        ) from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        # The refresh may have happened with the answer lost: the stored refresh token is unchanged and
        # Xero accepts it again for 30 minutes, so the retry of this task continues the chain.
        raise RuntimeError(
            f"no answer from Xero's token endpoint ({type(error).__name__}) for connection "
            f"'{settings.connection_id}'; the stored refresh token is kept for the retry."
        ) from None
    return TokenGrant(
        access_token=answer["access_token"],
        refresh_token=answer["refresh_token"],
        expires_in=int(answer.get("expires_in", 1800)),
        scope=answer.get("scope") or settings.scope,
    )


def _error_code(body: bytes | None) -> str:
    try:
        return str(json.loads(body or b"{}").get("error", ""))
    except (ValueError, AttributeError):
        return ""
