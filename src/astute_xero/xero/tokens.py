"""One OAuth2 token chain per Xero connection, shared by every worker through the database.

Two grant types. authorization_code (a Xero app a person authorised): the chain below. client_credentials
(a Xero Custom Connection, one organisation): no refresh token and no chain; the access token is fetched
with the client id and secret, shared through the same row (sealed, under the same lock) until it expires.

Xero's refresh tokens rotate: each refresh returns a new one and the old one
dies (after a 30-minute grace). Two workers refreshing at once would break the
chain, so refreshes are serialised by a row lock on xero_sync.oauth_token, the
new refresh token is committed before the new access token is used, and the
refresh token in the Airflow connection only starts the chain (or restarts it
when someone re-authorises and puts a new one there).

At rest, both tokens are sealed with Airflow's Fernet key ([core] fernet_key,
through the Task SDK's crypto helper): a stored value is "fernet:" + a Fernet
token. Without a usable key nothing is stored and the task fails saying how to
set one; there is no plaintext fallback. Rows written in plaintext by versions
before encryption (no "fernet:" prefix) are still read, and sealed under the row
lock on first use, so the chain is never lost. Every token is registered with
Airflow's secrets masker as soon as this process holds it in plaintext: fresh
from Xero, or unsealed from the table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from astute_xero.sql import load_sql
from astute_xero.xero.scopes import (AUTHORIZATION_CODE, CLIENT_CREDENTIALS, DEFAULT_API_URL, DEFAULT_IDENTITY_URL,
                                     DEFAULT_LOGIN_URL, GRANT_TYPES, GRANULAR_SCOPES)

# Refresh well before expiry so that the SDK (which refreshes by itself under 60 s) never has to.
REFRESH_MARGIN = dt.timedelta(minutes=5)
# (connect, read) seconds for a call to Xero's token endpoint. xero-python honours only an int or such a
# tuple (a float means no timeout at all); the endpoint answers in well under a second when it is up.
TOKEN_TIMEOUT_S: tuple[float, float] = (10, 30)
# How long a worker waits for the chain's row lock, which another worker holds while it refreshes (at most
# TOKEN_TIMEOUT_S, connect + read). Past this, the task fails and its retry tries again.
TOKEN_LOCK_WAIT_S: float = 90
# A holder of that lock idle in its transaction for longer than its refresh call can take has stopped: the
# server ends its session, and the lock with it (well within TOKEN_LOCK_WAIT_S).
TOKEN_LOCK_HOLDER_TIMEOUT_S: float = sum(TOKEN_TIMEOUT_S) + 15
# A stored token sealed with Airflow's Fernet key starts with this; one without it was written in plaintext.
SEALED_PREFIX = "fernet:"


@dataclass(frozen=True)
class XeroConnectionSettings:
    """The Airflow connection xero_default, resolved. Secrets are kept out of repr()."""

    connection_id: str
    client_id: str
    client_secret: str = field(repr=False)
    seed_refresh_token: str | None = field(default=None, repr=False)  # authorization_code only
    grant_type: str = AUTHORIZATION_CODE
    api_url: str = DEFAULT_API_URL
    identity_url: str = DEFAULT_IDENTITY_URL
    login_url: str = DEFAULT_LOGIN_URL
    scope: str = GRANULAR_SCOPES

    def __post_init__(self) -> None:
        if self.grant_type not in GRANT_TYPES:
            raise ValueError(f"Xero connection '{self.connection_id}': grant_type is {self.grant_type!r}; it must be "
                             f"one of {', '.join(GRANT_TYPES)}.")
        if self.grant_type == AUTHORIZATION_CODE and not self.seed_refresh_token:
            raise ValueError(f"Xero connection '{self.connection_id}' (grant type authorization_code) has no refresh "
                             "token: run `astute-xero authorise` to get one, or set grant_type to client_credentials "
                             "for a Custom Connection.")

    @property
    def chain_fingerprint(self) -> str:
        """What the stored tokens were obtained with: a new refresh token (or new client credentials, for a
        Custom Connection) in the connection starts over."""
        if self.grant_type == CLIENT_CREDENTIALS:
            return fingerprint(f"{CLIENT_CREDENTIALS}:{self.client_id}:{self.client_secret}")
        return fingerprint(self.seed_refresh_token or "")

    @property
    def accounting_base_url(self) -> str:
        return self.api_url.rstrip("/") + "/api.xro/2.0"

    @property
    def token_url(self) -> str:
        return self.identity_url.rstrip("/") + "/connect/token"


@dataclass(frozen=True)
class TokenGrant:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)  # None from client credentials
    expires_in: int
    scope: str


class XeroAuthorisationError(RuntimeError):
    """The token chain is broken: a person must re-authorise the Xero app. Never retried silently."""


class TokenKeyError(XeroAuthorisationError):
    """Airflow's Fernet key is missing, unusable, or not the one the stored tokens were sealed with: a
    person must set it (or re-authorise). Like a broken chain, no retry can fix it."""


def _fernet_key_setting_is_empty() -> bool:
    from airflow.sdk.configuration import conf

    value = conf.get("core", "fernet_key", fallback="") or ""
    return not value.strip() or value.strip() == "{FERNET_KEY}"  # the SDK's unexpanded default when unset


def airflow_fernet():
    """Airflow's Fernet (a MultiFernet over [core] fernet_key, comma-separated for key rotation).

    Airflow itself falls back to storing values unencrypted when the key is empty (and the Task SDK,
    with no airflow.cfg, sees the unexpanded template "{FERNET_KEY}" and fails obscurely): here both
    are an error that says how to set the key.
    """
    from airflow.sdk.crypto import get_fernet

    how = (
        "Set the same key on every Airflow component that runs tasks: [core] fernet_key in airflow.cfg, or "
        "the environment variable AIRFLOW__CORE__FERNET_KEY (make a key with: python -c \"from "
        "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\"). Nothing was stored."
    )
    try:
        fernet = get_fernet()
    except Exception as error:  # the SDK's AirflowException: an invalid key (its message never holds the key)
        problem = "is not set" if _fernet_key_setting_is_empty() else f"is not a valid Fernet key ({error})"
        raise TokenKeyError(f"Xero tokens are stored encrypted with Airflow's Fernet key, and [core] fernet_key "
                            f"{problem}. {how}") from None
    if not getattr(fernet, "is_encrypted", False):
        raise TokenKeyError(f"Xero tokens are stored encrypted with Airflow's Fernet key, and [core] fernet_key "
                            f"is not set (Airflow would store values unencrypted). {how}")
    return fernet


def is_sealed(stored: str | None) -> bool:
    return stored is None or stored.startswith(SEALED_PREFIX)


class TokenCipher:
    """Seals tokens for xero_sync.oauth_token with Airflow's Fernet key, and opens them again."""

    def __init__(self, fernet):
        self._fernet = fernet

    @classmethod
    def from_airflow(cls) -> TokenCipher:
        return cls(airflow_fernet())

    def seal(self, token: str) -> str:
        return SEALED_PREFIX + self._fernet.encrypt(token.encode("utf-8")).decode("ascii")

    def unseal(self, stored: str | None, connection_id: str) -> str | None:
        """The token; a value without the prefix is a plaintext one from before encryption, returned as is."""
        from cryptography.fernet import InvalidToken

        if stored is None or not stored.startswith(SEALED_PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(SEALED_PREFIX):].encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            raise TokenKeyError(
                f"The Xero tokens stored for connection '{connection_id}' (xero_sync.oauth_token) cannot be "
                "decrypted with Airflow's Fernet key: it is not the key they were sealed with. If the key was "
                "rotated, list the new key first and the old one after it, comma-separated, in [core] fernet_key "
                "(AIRFLOW__CORE__FERNET_KEY). If the old key is lost, re-authorise the Xero app and put the new "
                f"refresh token in the connection's extra 'refresh_token' (AIRFLOW_CONN_{connection_id.upper()}): "
                "that restarts the chain."
            ) from None


def mask_tokens(*tokens: str | None) -> None:
    """Register tokens with Airflow's secrets masker (this process's, and the task supervisor's)."""
    from airflow.sdk.log import mask_secret

    for token in tokens:
        if token:
            mask_secret(token)


# Obtains the next grant: from the chain's refresh token (authorization_code), or from the client id and
# secret alone (client_credentials, which is passed None).
RefreshCall = Callable[[XeroConnectionSettings, str | None], TokenGrant]


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

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection],
        settings: XeroConnectionSettings,
        refresh: RefreshCall,
        *,
        cipher: TokenCipher | None = None,
        holder_timeout_s: float = TOKEN_LOCK_HOLDER_TIMEOUT_S,
    ):
        """`holder_timeout_s`: how long a holder of the chain's lock may sit idle in its transaction (its refresh
        call) before the server ends its session."""
        self._connect = connect
        self._settings = settings
        self._refresh = refresh
        self._holder_timeout_s = holder_timeout_s
        # Before any token is read or written: without a usable Fernet key, fail here, saying how to set one.
        self._cipher = cipher or TokenCipher.from_airflow()
        mask_tokens(settings.seed_refresh_token, settings.client_secret)

    def access_token(self, *, force_refresh: bool = False, rejected: str | None = None) -> AccessToken:
        """A token valid for at least REFRESH_MARGIN. `rejected` is a token Xero just refused (401)."""
        with self._connect() as conn:
            row = conn.execute(load_sql("token_read"), {"connection_id": self._settings.connection_id}).fetchone()
            if row and not force_refresh and self._sealed_link_of_this_chain(row):
                access_token, expires_at, scope, _seed, refresh_token = row
                access_token = self._unseal(access_token)
                self._unseal(refresh_token)  # masked too: this process now holds it
                if self._usable(access_token, expires_at):
                    return AccessToken(access_token, expires_at, scope or self._settings.scope)
            # Expiring, refused, of an older chain, or still in plaintext: under the row lock.
            return self._refresh_locked(conn, rejected)

    def _sealed_link_of_this_chain(self, row: tuple) -> bool:
        access_token, _expires_at, _scope, seed, refresh_token = row
        this_chain = seed == self._settings.chain_fingerprint
        return this_chain and is_sealed(access_token) and is_sealed(refresh_token)

    def _seal(self, token: str | None) -> str | None:
        return None if token is None else self._cipher.seal(token)

    def _unseal(self, stored: str | None) -> str | None:
        token = self._cipher.unseal(stored, self._settings.connection_id)
        mask_tokens(token)
        return token

    @staticmethod
    def _usable(access_token: str | None, expires_at: dt.datetime | None, rejected: str | None = None) -> bool:
        now = dt.datetime.now(dt.timezone.utc)
        return (
            access_token is not None
            and access_token != rejected
            and expires_at is not None
            and expires_at - now > REFRESH_MARGIN
        )

    def _refresh_locked(self, conn: psycopg.Connection, rejected: str | None) -> AccessToken:
        try:
            return self._refresh_in_transaction(conn, rejected)
        except psycopg.errors.LockNotAvailable:
            raise RuntimeError(
                f"waited {TOKEN_LOCK_WAIT_S:g} s for the row lock on the token chain of connection "
                f"'{self._settings.connection_id}' (xero_sync.oauth_token) and gave up: another worker holds it, "
                f"normally only while it refreshes (at most {sum(TOKEN_TIMEOUT_S):g} s). Nothing was refreshed; "
                "the retry tries again."
            ) from None

    def _refresh_in_transaction(self, conn: psycopg.Connection, rejected: str | None) -> AccessToken:
        settings = self._settings
        seed = settings.chain_fingerprint
        with conn.transaction():
            conn.execute(load_sql("token_lock_timeout"), {
                "lock_timeout": f"{max(1, round(TOKEN_LOCK_WAIT_S * 1000))}ms",
                "holder_timeout": f"{max(1, round(self._holder_timeout_s * 1000))}ms",
            })
            conn.execute(
                load_sql("token_seed"),
                {
                    "connection_id": settings.connection_id,
                    "seed": seed,
                    "refresh_token": self._seal(settings.seed_refresh_token),
                },
            )
            stored_access, expires_at, scope, stored_seed, stored_refresh = conn.execute(
                load_sql("token_lock"), {"connection_id": settings.connection_id}
            ).fetchone()
            if stored_seed != seed:
                # Someone re-authorised and put a new refresh token in the connection: start the chain anew
                # (what is stored is not even opened: it may be sealed with a key that is gone).
                refresh_token, access_token = settings.seed_refresh_token, None
            else:
                refresh_token, access_token = self._unseal(stored_refresh), self._unseal(stored_access)
            if self._usable(access_token, expires_at, rejected):
                if not (is_sealed(stored_access) and is_sealed(stored_refresh)):
                    # Written in plaintext by an earlier version: sealed now, nothing rotated.
                    conn.execute(
                        load_sql("token_seal"),
                        {
                            "connection_id": settings.connection_id,
                            "refresh_token": self._seal(refresh_token),
                            "access_token": self._seal(access_token),
                        },
                    )
                return AccessToken(access_token, expires_at, scope or settings.scope)  # another worker refreshed
            grant = self._refresh(settings, refresh_token)
            mask_tokens(grant.access_token, grant.refresh_token)
            now = dt.datetime.now(dt.timezone.utc)
            expires_at = now + dt.timedelta(seconds=grant.expires_in)
            conn.execute(
                load_sql("token_store"),
                {
                    "connection_id": settings.connection_id,
                    "seed": seed,
                    "refresh_token": self._seal(grant.refresh_token),
                    "access_token": self._seal(grant.access_token),
                    "expires_at": expires_at,
                    "scope": grant.scope,
                },
            )
        # Committed: the new refresh token is safe before the new access token is used.
        return AccessToken(grant.access_token, expires_at, grant.scope)


def obtain_with_sdk(settings: XeroConnectionSettings, refresh_token: str | None) -> TokenGrant:
    """The next token, through xero-python's TokenApi pointed at the connection's identity URL: a refresh of the
    chain (authorization_code), or a new token from the client id and secret (client_credentials). With a real
    (connect, read) timeout: TokenApi passes none, and without one a token endpoint that never answers would
    hold the task (and the chain's row lock) forever."""
    import urllib3
    from xero_python.exceptions import ApiException

    connect_s, read_s = TOKEN_TIMEOUT_S
    token_api = sdk_token_api(settings)
    custom = settings.grant_type == CLIENT_CREDENTIALS
    try:
        if custom:
            answer = token_api.get_client_credentials_token(app_store_billing=False)
        else:
            answer = token_api.refresh_token(refresh_token, settings.scope.split())
    except ApiException as error:
        detail = _error_code(error.body)
        if error.status == 400 and detail in {"invalid_grant", "invalid_client", "unauthorized_client"}:
            if custom:
                raise XeroAuthorisationError(
                    f"Xero refused the client credentials of connection '{settings.connection_id}' ({detail}): check "
                    "the Custom Connection's client id and secret (login and password of the connection) and that "
                    "the connection is still active at Xero."
                ) from None
            raise XeroAuthorisationError(
                f"Xero refused to refresh the token of connection '{settings.connection_id}' ({detail}). "
                "The token chain is broken: re-authorise the Xero app (`astute-xero authorise`), which puts the new "
                f"refresh token in the connection's extra 'refresh_token' (AIRFLOW_CONN_{settings.connection_id.upper()})."
            ) from None
        raise RuntimeError(
            f"Xero's token endpoint answered HTTP {error.status} for connection '{settings.connection_id}'."
        ) from None
    except urllib3.exceptions.TimeoutError as error:
        raise RuntimeError(
            f"no answer from Xero's token endpoint within the timeout (connect {connect_s:g} s, read {read_s:g} s: "
            f"{type(error).__name__}) for connection '{settings.connection_id}'. The refresh may have happened "
            "with its answer lost; Xero accepts the old refresh token again for 30 minutes, so the stored "
            "refresh token is kept for the retry."
        ) from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        # The refresh may have happened with the answer lost: the stored refresh token is unchanged and
        # Xero accepts it again for 30 minutes, so the retry of this task continues the chain.
        raise RuntimeError(
            f"no answer from Xero's token endpoint ({type(error).__name__}) for connection "
            f"'{settings.connection_id}'; the stored refresh token is kept for the retry."
        ) from None
    # Masked before anything else can log them.
    mask_tokens(answer.get("access_token"), answer.get("refresh_token"), answer.get("id_token"))
    return TokenGrant(
        access_token=answer["access_token"],
        refresh_token=None if custom else answer["refresh_token"],
        expires_in=int(answer.get("expires_in", 1800)),
        scope=answer.get("scope") or settings.scope,
    )


def sdk_token_api(settings: XeroConnectionSettings):
    """xero-python's TokenApi for this connection: its token URLs pointed at the connection's identity URL, every
    call with TOKEN_TIMEOUT_S, and the project's retry policy (xero_client.harden)."""
    from xero_python.api_client import ApiClient, Configuration
    from xero_python.api_client.oauth2 import TokenApi

    from astute_xero.xero.client import harden

    api_client = harden(ApiClient(Configuration()))
    sdk_call_api = api_client.call_api

    def call_api_with_timeout(*args, **kwargs):
        kwargs.setdefault("_request_timeout", TOKEN_TIMEOUT_S)  # a tuple: the form xero-python honours
        return sdk_call_api(*args, **kwargs)

    api_client.call_api = call_api_with_timeout
    token_api = TokenApi(api_client, settings.client_id, settings.client_secret)
    # Instance attributes: the class attributes are shared by every TokenApi in the process.
    token_api.refresh_token_url = settings.token_url
    token_api.client_credentials_token_url = settings.token_url
    token_api.revoke_token_url = settings.identity_url.rstrip("/") + "/connect/revocation"
    return token_api


def _error_code(body: bytes | None) -> str:
    try:
        return str(json.loads(body or b"{}").get("error", ""))
    except (ValueError, AttributeError):
        return ""
