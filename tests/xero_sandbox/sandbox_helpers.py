"""Build xero-python clients against the sandbox exactly as production does."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import urllib3
from xero_python.accounting import AccountingApi
from xero_python.api_client import ApiClient
from xero_python.api_client.configuration import Configuration
from xero_python.api_client.oauth2 import OAuth2Token, TokenApi
from xero_python.identity import IdentityApi

from xero_sandbox import SandboxBackend, XeroSandbox

CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret-not-real"


@dataclass
class TokenHolder:
    """What the product keeps per connection (its token store)."""

    token: dict[str, Any] = field(default_factory=dict)

    def get(self) -> dict[str, Any]:
        return self.token

    def save(self, token: dict[str, Any]) -> None:
        self.token = dict(token)


def make_api_client(client_id: str, client_secret: str, holder: TokenHolder) -> ApiClient:
    api_client = ApiClient(
        Configuration(oauth2_token=OAuth2Token(client_id=client_id, client_secret=client_secret)),
        oauth2_token_getter=holder.get,
        oauth2_token_saver=holder.save,
    )
    # Configuration is a per-process singleton: set this client's token explicitly.
    api_client.configuration.oauth2_token = OAuth2Token(client_id=client_id, client_secret=client_secret)
    # No hidden urllib3 retries: 429s, drops and read timeouts must surface.
    api_client.rest_client.pool_manager = urllib3.PoolManager(num_pools=4, maxsize=8, retries=False)
    return api_client


def refresh(sandbox: XeroSandbox, api_client: ApiClient, refresh_token: str,
            client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET,
            scope: list[str] | None = None) -> dict[str, Any]:
    """The product's explicit refresh: a TokenApi instance pointed at the sandbox."""
    token_api = TokenApi(api_client, client_id, client_secret)
    token_api.refresh_token_url = sandbox.url + "/connect/token"
    raw = token_api.refresh_token(refresh_token, scope or ["offline_access", "accounting.transactions"])
    token = dict(raw)
    token["scope"] = str(raw["scope"]).split()
    token["expires_at"] = time.time() + raw["expires_in"]
    return token


@dataclass
class Xero:
    """One connected organisation and a client for it."""

    sandbox: XeroSandbox
    backend: SandboxBackend
    tenant_id: str
    holder: TokenHolder
    api_client: ApiClient
    accounting: AccountingApi
    identity: IdentityApi
    first_refresh_token: str


def connect(sandbox: XeroSandbox, tenant_name: str = "Demo Company (AU)", **tenant_kwargs: Any) -> Xero:
    backend = sandbox.backend
    backend.register_app(CLIENT_ID, CLIENT_SECRET)
    tenant_kwargs.setdefault("currencies", ["AUD", "NZD"])
    tenant_id = backend.add_tenant(tenant_name, **tenant_kwargs)
    first = backend.authorise(CLIENT_ID, [tenant_id])
    holder = TokenHolder()
    api_client = make_api_client(CLIENT_ID, CLIENT_SECRET, holder)
    holder.save(refresh(sandbox, api_client, first))
    return Xero(
        sandbox=sandbox, backend=backend, tenant_id=tenant_id, holder=holder, api_client=api_client,
        accounting=AccountingApi(api_client, base_url=sandbox.url + "/api.xro/2.0"),
        identity=IdentityApi(api_client, base_url=sandbox.url),
        first_refresh_token=first,
    )


def raw_call(xero: Xero, method: str, path: str, body: Any = None, tenant_id: str | None = None,
             headers: dict[str, str] | None = None, timeout: Any = None) -> tuple[int, Any]:
    """A hand-written client (what xero-python would refuse to send): the status
    and the JSON body (amounts as Decimal), or the raw bytes when not JSON."""
    response = urllib3.PoolManager(retries=False).request(
        method, xero.sandbox.url + path, body=None if body is None else json.dumps(body),
        headers={"Authorization": "Bearer " + xero.holder.token["access_token"],
                 "xero-tenant-id": tenant_id or xero.tenant_id, "Content-Type": "application/json",
                 "Accept": "application/json", **(headers or {})},
        timeout=timeout)
    try:
        return response.status, json.loads(response.data, parse_float=Decimal)
    except ValueError:
        return response.status, response.data
