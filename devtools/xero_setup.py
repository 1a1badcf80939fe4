"""Organisations in the Xero sandbox and the xero_default connection that reaches them."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass, field

from astute_xero.xero.scopes import GRANULAR_SCOPES
from xero_sandbox import SandboxBackend


@dataclass(frozen=True)
class XeroApp:
    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)


# Made at Xero after 2 March 2026, like any app made today: it may hold only the granular scopes.
APP_CREATED = dt.date(2026, 6, 1)


def authorise_app(backend: SandboxBackend, tenant_ids: list[str]) -> XeroApp:
    """Register an app and consent to these organisations with the pipeline's default (granular) scopes, as a
    person would in Xero's login flow (`astute-xero authorise` drives that flow itself over HTTP)."""
    client_id = "astute-" + secrets.token_hex(8)
    client_secret = secrets.token_urlsafe(24)
    backend.identity.register_app(client_id, client_secret, created=APP_CREATED)
    return XeroApp(client_id, client_secret, backend.authorise(client_id, tenant_ids, scope=GRANULAR_SCOPES))


# The sandbox answers on loopback in milliseconds: a call it has not answered in 10 s is lost, and one it
# committed late lands within a second after that (production: 120 s and 60 s).
SANDBOX_TIMEOUTS = {"read_timeout_s": 10, "late_commit_margin_s": 1}


def airflow_connection_json(app: XeroApp, sandbox_url: str, *, limits: dict | None = None) -> str:
    """AIRFLOW_CONN_XERO_DEFAULT for the sandbox: the URLs and the timeouts differ from production.
    `limits` (the extra's "limits": per_minute, per_day, concurrent, app_per_minute, minute_s, day_s,
    organisations) tells the pacer the sandbox's limits when a benchmark has changed them."""
    return json.dumps(
        {
            "conn_type": "xero",
            "login": app.client_id,
            "password": app.client_secret,
            "extra": {"api_url": sandbox_url, "identity_url": sandbox_url, "refresh_token": app.refresh_token,
                      **SANDBOX_TIMEOUTS, **({"limits": limits} if limits else {})},
        }
    )
