"""What Airflow learns about this provider from the `apache_airflow_provider` entry point (pyproject.toml):
the Xero connection type, its form, its hook, and the notifier. Read by `airflow providers list`, the
connection form of the UI, and `airflow connections add --conn-type xero`, without importing the hook."""

from __future__ import annotations

from typing import Any

from astute_xero import __version__
from astute_xero.xero.scopes import CLASSIC_SCOPES, DEFAULT_API_URL, DEFAULT_IDENTITY_URL, DEFAULT_LOGIN_URL, GRANULAR_SCOPES


def _text(label: str, description: str, *, default: str | None = None, secret: bool = False,
          choices: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if default is not None:
        schema["default"] = default
    if secret:
        schema["format"] = "password"
    if choices:
        schema["enum"] = choices
    return {"label": label, "description": description, "schema": schema}


XERO_CONNECTION_FIELDS = {
    "grant_type": _text(
        "Grant type",
        "authorization_code: a Xero app a person authorised (many organisations; the refresh token below, kept "
        "rotating by the pipeline). client_credentials: a Xero Custom Connection (one organisation; no refresh "
        "token).",
        default="authorization_code", choices=["authorization_code", "client_credentials"],
    ),
    "refresh_token": _text(
        "Refresh token",
        "authorization_code only: the first refresh token, from `astute-xero authorise`. The pipeline keeps the "
        "rotating chain in its database from then on; put a new one here only after re-authorising.",
        secret=True,
    ),
    "scope": _text(
        "Scopes",
        f"Space-separated. Apps created at Xero since 2 March 2026 need the granular scopes (the default: "
        f"{GRANULAR_SCOPES}); an older app may use the classic ones ({CLASSIC_SCOPES}).",
        default=GRANULAR_SCOPES,
    ),
    "api_url": _text("API URL", "Xero's API (accounting and /connections).", default=DEFAULT_API_URL),
    "identity_url": _text("Identity URL", "Xero's token endpoint host.", default=DEFAULT_IDENTITY_URL),
    "login_url": _text("Login URL", "Where a person consents (the authorization-code flow).",
                       default=DEFAULT_LOGIN_URL),
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "astute-xero-provider",
        "name": "Astute Xero",
        "description": "Exports Astute's Sent invoices and credit notes to Xero exactly once: the Xero connection "
                       "type and hook, onboarding (`astute-xero authorise`, `astute-xero organisations`), and the "
                       "Xero Integration report in the Airflow UI.",
        "versions": [__version__],
        "integrations": [{"integration-name": "Xero", "external-doc-url": "https://developer.xero.com/documentation/",
                          "tags": ["service"]}],
        "hooks": [{"integration-name": "Xero", "python-modules": ["astute_xero.hooks"]}],
        "connection-types": [{
            "connection-type": "xero",
            "hook-class-name": "astute_xero.hooks.XeroHook",
            "hook-name": "Xero",
            "conn-fields": XERO_CONNECTION_FIELDS,
            "ui-field-behaviour": {
                "hidden-fields": ["host", "schema", "port"],
                "relabeling": {"login": "Client ID", "password": "Client secret"},
                "placeholders": {
                    "extra": '{"limits": {"organisations": {"<tenant id>": {"per_day": 1000}}}, "read_timeout_s": 120}',
                },
            },
        }],
        "notifications": ["astute_xero.notifications.XeroAlertNotifier"],
        "config": {
            "astute_xero": {
                "description": "The Astute → Xero export.",
                "options": {
                    "export_deadline_hours": {
                        "description": "An alert (through the connection xero_alerts) when an export run is still "
                                       "going this many hours after it was queued. Empty: no deadline.",
                        "version_added": "1.0.0", "type": "string", "example": "6", "default": "",
                    },
                    "full_reconciliation_days": {
                        "description": "The daily xero_status_sync reads an organisation in full (every document, "
                                       "compared with Astute) when its last full reconciliation was this many "
                                       "days ago or more (UTC days); the only read that finds a document Xero no "
                                       "longer holds or one Astute edited after export. 0: only when asked.",
                        "version_added": "1.0.0", "type": "integer", "example": "7", "default": "7",
                    },
                    "lane_chunks": {
                        "description": "The most chunks (of up to 100 documents, one Xero call each) one mapped "
                                       "export task works, a few at once. Smaller: retries and progress in smaller "
                                       "units, an Airflow task start (about 2 CPU-seconds) each; larger: cheaper.",
                        "version_added": "1.0.0", "type": "integer", "example": "50", "default": "50",
                    },
                },
            },
        },
    }
