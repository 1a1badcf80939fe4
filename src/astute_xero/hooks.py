"""Airflow's side of the two connections: astute_db (Postgres) and xero_default (type xero, this provider's).

xero_default: login = client id, password = client secret; the form's fields (extra): grant_type
(authorization_code, the default, or client_credentials for a Custom Connection), refresh_token
(authorization_code only; `astute-xero authorise` writes it), scope (default: the granular scopes,
astute_xero.xero.scopes), api_url, identity_url, login_url (Xero's, by default). Further extra keys:
"read_timeout_s" (default 120), "late_commit_margin_s" (default 60), and "limits": Xero's limits the pacer
plans with, every key optional (defaults: Xero's published limits), e.g. {"per_minute": 60, "per_day": 5000,
"concurrent": 5, "app_per_minute": 10000, "organisations": {"<tenant id>": {"per_day": 1000}}} for an
organisation on Xero's Starter tier (see pacing.XeroLimits). Both work from AIRFLOW_CONN_* environment
variables in JSON form.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from airflow.providers.postgres.hooks.postgres import PostgresHook
from airflow.sdk import BaseHook, Connection

from astute_xero.xero.pacing import Pacer, XeroLimits
from astute_xero.xero.client import ApiCall, XeroClient
from astute_xero.xero.tokens import TokenStore, XeroConnectionSettings, obtain_with_sdk

ASTUTE_CONN_ID = "astute_db"
XERO_CONN_ID = "xero_default"


def astute_connection() -> psycopg.Connection:
    """A new autocommit connection to the Astute database; callers open transactions explicitly."""
    conn = PostgresHook(postgres_conn_id=ASTUTE_CONN_ID).get_conn()
    conn.autocommit = True
    return conn


class XeroHook(BaseHook):
    """Owns the Xero connection: its settings, its shared token chain, and clients built on them."""

    conn_name_attr = "xero_conn_id"
    default_conn_name = XERO_CONN_ID
    conn_type = "xero"
    hook_name = "Xero"

    def __init__(self, xero_conn_id: str = XERO_CONN_ID, *, connection: Connection | None = None) -> None:
        """`connection`: the connection already resolved, where the Task SDK cannot look it up (the
        `astute-xero` commands read Airflow's metadata database themselves); tasks leave it out."""
        super().__init__()
        self.xero_conn_id = xero_conn_id
        self._connection = connection

    def connection(self) -> Connection:
        return self._connection or self.get_connection(self.xero_conn_id)

    def settings(self) -> XeroConnectionSettings:
        conn = self.connection()
        extra = conn.extra_dejson
        missing = [name for name, value in (("login (client id)", conn.login), ("password (client secret)", conn.password))
                   if not value]
        if missing:
            raise ValueError(f"Airflow connection '{self.xero_conn_id}' lacks {', '.join(missing)}.")
        optional = {key: extra[key] for key in ("grant_type", "api_url", "identity_url", "login_url", "scope")
                    if extra.get(key)}
        return XeroConnectionSettings(  # refuses an unknown grant type, or authorization_code without a token
            connection_id=self.xero_conn_id,
            client_id=conn.login,
            client_secret=conn.password,
            seed_refresh_token=extra.get("refresh_token") or None,
            **optional,
        )

    def limits(self) -> XeroLimits:
        extra = self.connection().extra_dejson
        try:
            return XeroLimits.from_config(extra.get("limits"))
        except ValueError as error:
            raise ValueError(f"Airflow connection '{self.xero_conn_id}', extra.{error}") from None

    def pacer(self, connect: Callable[[], psycopg.Connection] = astute_connection) -> Pacer:
        return Pacer(connect, limits=self.limits(), app_key=self.connection().login)

    def client(self, *, on_retried_call: Callable[[ApiCall], None] | None = None,
               connect: Callable[[], psycopg.Connection] = astute_connection, read_only: bool = False) -> XeroClient:
        """A client whose token chain and budgets live in the Astute database (`connect`: astute_db by default);
        `read_only`: it refuses every call but a GET (a preview's)."""
        settings = self.settings()
        tokens = TokenStore(connect, settings, obtain_with_sdk)
        extra = self.connection().extra_dejson
        timeouts = {key: int(extra[key]) for key in ("read_timeout_s", "late_commit_margin_s") if extra.get(key)}
        return XeroClient(settings, tokens, self.pacer(connect), on_retried_call=on_retried_call, read_only=read_only,
                          **timeouts)
