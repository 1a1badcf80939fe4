"""Where Xero is, and what the pipeline asks it for.

Xero's granular scopes (required of apps created since 2 March 2026) split the classic
accounting.transactions: the pipeline writes invoices and credit notes (with their allocations) and
Contacts, and only reads payments and the organisation's settings (chart, tax rates, currencies,
tracking). offline_access gives the refresh token of the authorization-code flow; a Custom Connection
(client credentials) has none and asks without it.
"""

from __future__ import annotations

DEFAULT_API_URL = "https://api.xero.com"
DEFAULT_IDENTITY_URL = "https://identity.xero.com"
DEFAULT_LOGIN_URL = "https://login.xero.com"

GRANULAR_SCOPES = "offline_access accounting.invoices accounting.payments.read accounting.contacts accounting.settings.read"
CLASSIC_SCOPES = "offline_access accounting.transactions accounting.contacts accounting.settings.read"

AUTHORIZATION_CODE = "authorization_code"
CLIENT_CREDENTIALS = "client_credentials"
GRANT_TYPES = (AUTHORIZATION_CODE, CLIENT_CREDENTIALS)


def without_offline_access(scope: str) -> str:
    """The scopes a client-credentials token is asked for: offline_access means nothing there."""
    return " ".join(part for part in scope.split() if part != "offline_access")
