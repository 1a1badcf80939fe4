"""OAuth2: the authorization-code flow (authorize, consent, code exchange, PKCE),
granular scopes, custom connections, rotation, grace reuse, expiry, client auth,
connections, 401/403."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import parse_qsl, quote, urlencode

import pytest
import urllib3
from xero_python.accounting import AccountingApi
from xero_python.api_client.oauth2 import TokenApi
from xero_python.exceptions import HTTPStatusException

from xero_sandbox import SandboxBackend, XeroSandbox
from xero_sandbox.api import SandboxApi

from .sandbox_helpers import CLIENT_ID, CLIENT_SECRET, TokenHolder, Xero, make_api_client, refresh

HTTP = urllib3.PoolManager(retries=False)


def _grant_error(call) -> dict:
    with pytest.raises(HTTPStatusException) as info:
        call()
    assert info.value.status == 400
    return json.loads(info.value.body)


def test_token_response_has_exactly_xeros_keys(xero: Xero) -> None:
    token = xero.holder.token
    assert token["token_type"] == "Bearer" and token["expires_in"] == 1800
    assert {"id_token", "access_token", "refresh_token", "scope"} <= set(token)
    assert token["refresh_token"] != xero.first_refresh_token


def test_refresh_rotates_and_old_token_dies_once_new_one_is_used(xero: Xero) -> None:
    second = xero.holder.token["refresh_token"]
    third = refresh(xero.sandbox, xero.api_client, second)["refresh_token"]
    # The first token's successor has been used: the first one is dead now.
    assert _grant_error(lambda: refresh(xero.sandbox, xero.api_client, xero.first_refresh_token)) == {"error": "invalid_grant"}
    # And the second died when the third was used.
    refresh(xero.sandbox, xero.api_client, third)
    assert _grant_error(lambda: refresh(xero.sandbox, xero.api_client, second))["error"] == "invalid_grant"


def test_grace_reuse_after_lost_response_keeps_the_chain_alive(xero: Xero) -> None:
    current = xero.holder.token["refresh_token"]
    lost = refresh(xero.sandbox, xero.api_client, current)  # pretend this answer never arrived
    xero.backend.advance(600)
    retry = refresh(xero.sandbox, xero.api_client, current)  # within 30 min: allowed
    assert retry["refresh_token"] not in (lost["refresh_token"], current)
    following = refresh(xero.sandbox, xero.api_client, retry["refresh_token"])
    assert following["access_token"]
    # Using the retry's token retired the sibling the client never saw.
    assert _grant_error(lambda: refresh(xero.sandbox, xero.api_client, lost["refresh_token"]))["error"] == "invalid_grant"


def test_reuse_after_grace_window_is_invalid_grant(xero: Xero) -> None:
    current = xero.holder.token["refresh_token"]
    refresh(xero.sandbox, xero.api_client, current)
    xero.backend.advance(xero.backend.limits.refresh_grace_s + 1)
    assert _grant_error(lambda: refresh(xero.sandbox, xero.api_client, current)) == {"error": "invalid_grant"}


def test_unknown_refresh_token_and_bad_client(xero: Xero) -> None:
    assert _grant_error(lambda: refresh(xero.sandbox, xero.api_client, "nope"))["error"] == "invalid_grant"
    token = xero.holder.token["refresh_token"]
    assert _grant_error(lambda: refresh(xero.sandbox, xero.api_client, token,
                                        client_secret="wrong")) == {"error": "invalid_client"}


def test_unused_refresh_token_expires_after_60_days(xero: Xero) -> None:
    token = xero.holder.token["refresh_token"]
    xero.backend.advance(61 * 24 * 3600)
    assert _grant_error(lambda: refresh(xero.sandbox, xero.api_client, token))["error"] == "invalid_grant"


def test_concurrent_refresh_race_can_be_reproduced(xero: Xero) -> None:
    xero.backend.limits.refresh_race_window_s = 5
    token = xero.holder.token["refresh_token"]
    refresh(xero.sandbox, xero.api_client, token)
    assert _grant_error(lambda: refresh(xero.sandbox, xero.api_client, token))["error"] == "invalid_grant"


def test_http_basic_client_auth_is_accepted(xero: Xero) -> None:
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    response = urllib3.PoolManager(retries=False).request(
        "POST", xero.sandbox.url + "/connect/token", encode_multipart=False,
        headers={"Authorization": f"Basic {basic}"},
        fields={"grant_type": "refresh_token", "refresh_token": xero.holder.token["refresh_token"]})
    assert response.status == 200
    assert json.loads(response.data)["token_type"] == "Bearer"


def test_client_credentials_for_custom_connection(sandbox: XeroSandbox) -> None:
    sandbox.backend.reset()
    tenant_id = sandbox.backend.add_tenant("Custom Org")
    sandbox.backend.register_app("custom-app", "custom-secret", custom_tenant_id=tenant_id)
    holder = TokenHolder()
    api_client = make_api_client("custom-app", "custom-secret", holder)
    token_api = TokenApi(api_client, "custom-app", "custom-secret")
    token_api.client_credentials_token_url = sandbox.url + "/connect/token"
    token = token_api.get_client_credentials_token(app_store_billing=False)
    # No user: no id_token; no refresh token; the scopes the organisation authorised.
    assert set(token) == {"access_token", "expires_in", "token_type", "scope"} and token["expires_in"] == 1800
    assert token["scope"] == "accounting.transactions accounting.contacts accounting.settings"
    holder.save({**token, "scope": token["scope"].split(), "expires_at": time.time() + 1800})
    accounting = AccountingApi(api_client, base_url=sandbox.url + "/api.xro/2.0")
    assert accounting.get_organisations(tenant_id).organisations[0].name == "Custom Org"
    sandbox.backend.reset()


def test_custom_connection_reaches_its_one_organisation(sandbox: XeroSandbox) -> None:
    backend = sandbox.backend
    backend.reset()
    mine, other = backend.add_tenant("Custom Org"), backend.add_tenant("Not Mine")
    backend.identity.register_app("custom-app", "custom-secret", custom_tenant_id=mine, created=NEW_APP_DAY,
                                  scope="accounting.invoices accounting.contacts.read accounting.settings.read")
    status, token = _token_request(sandbox, {"grant_type": "client_credentials"}, "custom-app", "custom-secret")
    assert status == 200 and set(token) == {"access_token", "expires_in", "token_type", "scope"}
    assert token["scope"] == "accounting.invoices accounting.contacts.read accounting.settings.read"
    access = token["access_token"]

    status, connections = _api(sandbox, access, "GET", "/connections")
    assert status == 200 and [(c["tenantId"], c["tenantName"]) for c in connections] == [(mine, "Custom Org")]
    # Xero needs no xero-tenant-id header from a custom connection; another organisation is 403.
    status, body = _api(sandbox, access, "GET", "/api.xro/2.0/Organisation")
    assert status == 200 and body["Organisations"][0]["OrganisationID"] == mine
    assert _api(sandbox, access, "GET", "/api.xro/2.0/Organisation", tenant_id=mine)[0] == 200
    status, body = _api(sandbox, access, "GET", "/api.xro/2.0/Organisation", tenant_id=other)
    assert (status, body["Detail"]) == (403, "AuthenticationUnsuccessful")
    # Its scopes hold: contacts are read-only.
    status, body = _api(sandbox, access, "PUT", "/api.xro/2.0/Contacts", body={"Contacts": [{"Name": "X"}]})
    assert (status, body["Detail"]) == (403, "AuthorizationUnsuccessful")

    # A subset may be asked for; anything not authorised (offline_access included) is invalid_scope.
    status, token = _token_request(sandbox, {"grant_type": "client_credentials", "scope": "accounting.invoices"},
                                   "custom-app", "custom-secret")
    assert status == 200 and token["scope"] == "accounting.invoices"
    for scope in ("accounting.contacts", "offline_access accounting.invoices", "accounting.transactions"):
        assert _token_request(sandbox, {"grant_type": "client_credentials", "scope": scope},
                              "custom-app", "custom-secret") == (400, {"error": "invalid_scope"})
    # Other apps have no client credentials; a custom connection has no authorization-code flow.
    backend.identity.register_app("plain-app", "plain-secret", redirect_uris=[REDIRECT_URI])
    assert _token_request(sandbox, {"grant_type": "client_credentials"}, "plain-app", "plain-secret") == (
        400, {"error": "unauthorized_client"})
    backend.identity.register_app("custom-app", "custom-secret", custom_tenant_id=mine, redirect_uris=[REDIRECT_URI],
                                  created=NEW_APP_DAY,
                                  scope="accounting.invoices accounting.contacts.read accounting.settings.read")
    back = _sent_back(_authorize(sandbox, client_id="custom-app", scope="accounting.invoices", state="s"))
    assert back == {"error": "unauthorized_client", "state": "s"}

    # Disconnected by the organisation, it stays so: a new token does not bring it back.
    backend.disconnect("custom-app", mine)
    status, token = _token_request(sandbox, {"grant_type": "client_credentials"}, "custom-app", "custom-secret")
    assert _api(sandbox, token["access_token"], "GET", "/connections") == (200, [])
    assert _api(sandbox, token["access_token"], "GET", "/api.xro/2.0/Organisation")[0] == 403
    backend.reset()


def test_custom_connection_of_a_new_app_is_granted_granular_scopes(sandbox: XeroSandbox) -> None:
    backend = sandbox.backend
    backend.reset()
    tenant = backend.add_tenant("Custom Org")
    with pytest.raises(ValueError, match="invalid_scope"):
        backend.identity.register_app("custom-app", "s", custom_tenant_id=tenant, created=NEW_APP_DAY,
                                      scope="accounting.transactions accounting.contacts")
    with pytest.raises(ValueError):
        backend.identity.register_app("custom-app", "s", custom_tenant_id=tenant, scope="offline_access accounting.contacts")
    backend.identity.register_app("custom-app", "s", custom_tenant_id=tenant, created=NEW_APP_DAY)
    status, token = _token_request(sandbox, {"grant_type": "client_credentials"}, "custom-app", "s")
    assert status == 200
    assert token["scope"] == "accounting.invoices accounting.payments accounting.contacts accounting.settings"
    backend.reset()


def test_connections_lists_the_consented_tenants(xero: Xero) -> None:
    connections = xero.identity.get_connections()
    assert [(c.tenant_id, c.tenant_type, c.tenant_name) for c in connections] == [
        (xero.tenant_id, "ORGANISATION", "Demo Company (AU)")]


def test_expired_access_token_is_401_with_www_authenticate(xero: Xero) -> None:
    xero.backend.advance(1801)
    with pytest.raises(HTTPStatusException) as info:
        xero.accounting.get_organisations(xero.tenant_id)
    assert info.value.status == 401
    body = json.loads(info.value.body)
    assert body["Title"] == "Unauthorized" and body["Status"] == 401 and body["Type"] is None
    assert body["Detail"].startswith("TokenExpired: token expired at ")
    assert info.value.headers["WWW-Authenticate"] == "Bearer error=invalid_token"


def test_unknown_token_is_401(xero: Xero) -> None:
    xero.holder.token = {**xero.holder.token, "access_token": "forged"}
    with pytest.raises(HTTPStatusException) as info:
        xero.accounting.get_organisations(xero.tenant_id)
    assert info.value.status == 401


def test_tenant_not_connected_is_403(xero: Xero) -> None:
    other = xero.backend.add_tenant("Someone Else")
    for tenant in (other, "00000000-0000-0000-0000-000000000001"):
        with pytest.raises(HTTPStatusException) as info:
            xero.accounting.get_organisations(tenant)
        assert info.value.status == 403
        body = json.loads(info.value.body)
        assert (body["Title"], body["Status"], body["Detail"]) == ("Forbidden", 403, "AuthenticationUnsuccessful")


def test_missing_scope_is_403(sandbox: XeroSandbox) -> None:
    sandbox.backend.reset()
    backend = sandbox.backend
    backend.register_app(CLIENT_ID, CLIENT_SECRET)
    tenant_id = backend.add_tenant("Narrow")
    first = backend.authorise(CLIENT_ID, [tenant_id], scope="offline_access accounting.contacts.read")
    holder = TokenHolder()
    api_client = make_api_client(CLIENT_ID, CLIENT_SECRET, holder)
    holder.save(refresh(sandbox, api_client, first))
    accounting = AccountingApi(api_client, base_url=sandbox.url + "/api.xro/2.0")
    assert accounting.get_contacts(tenant_id).contacts == []
    with pytest.raises(HTTPStatusException) as info:
        accounting.get_invoices(tenant_id)
    assert info.value.status == 403 and json.loads(info.value.body)["Detail"] == "AuthorizationUnsuccessful"


def test_sdk_auto_refresh_saves_the_rotated_token(xero: Xero, monkeypatch: pytest.MonkeyPatch) -> None:
    """xero-python refreshes by itself when <60 s remain (class-level URL)."""
    monkeypatch.setattr(TokenApi, "refresh_token_url", xero.sandbox.url + "/connect/token")
    before = dict(xero.holder.token)
    xero.holder.token = {**before, "expires_at": time.time() + 10}
    xero.accounting.get_organisations(xero.tenant_id)
    assert xero.holder.token["refresh_token"] != before["refresh_token"]
    assert xero.holder.token["access_token"] != before["access_token"]


def test_disconnecting_one_organisation_mid_run(xero: Xero) -> None:
    """Three organisations in one consent; one disconnects the app: only its calls turn 403."""
    backend = xero.backend
    others = [backend.add_tenant("Second Org"), backend.add_tenant("Third Org")]
    tenants = [xero.tenant_id, *others]
    xero.holder.save(refresh(xero.sandbox, xero.api_client, backend.authorise(CLIENT_ID, tenants)))
    for tenant in tenants:
        xero.accounting.get_organisations(tenant)

    backend.disconnect(CLIENT_ID, others[0])
    with pytest.raises(HTTPStatusException) as info:
        xero.accounting.get_organisations(others[0])
    body = json.loads(info.value.body)
    assert (info.value.status, body["Title"], body["Detail"]) == (403, "Forbidden", "AuthenticationUnsuccessful")
    for tenant in (xero.tenant_id, others[1]):
        xero.accounting.get_organisations(tenant)
    assert sorted(c.tenant_id for c in xero.identity.get_connections()) == sorted([xero.tenant_id, others[1]])
    # A refreshed token does not bring the organisation back; only a new consent does.
    xero.holder.save(refresh(xero.sandbox, xero.api_client, xero.holder.token["refresh_token"]))
    with pytest.raises(HTTPStatusException):
        xero.accounting.get_organisations(others[0])
    with pytest.raises(KeyError):
        backend.disconnect(CLIENT_ID, others[0])
    xero.holder.save(refresh(xero.sandbox, xero.api_client, backend.authorise(CLIENT_ID, [others[0]])))
    xero.accounting.get_organisations(others[0])


def test_delete_connection_over_http(xero: Xero) -> None:
    (connection,) = xero.identity.get_connections()
    xero.identity.delete_connection(connection.id)
    assert xero.api_client.last_response.status == 204
    assert xero.identity.get_connections() == []
    with pytest.raises(HTTPStatusException) as info:
        xero.accounting.get_organisations(xero.tenant_id)
    assert info.value.status == 403
    with pytest.raises(HTTPStatusException) as missing:
        xero.identity.delete_connection(connection.id)
    assert missing.value.status == 404


# ====================================================================== authorization code flow
REDIRECT_URI = "http://localhost:8765/callback"
OTHER_REDIRECT_URI = "https://astute.example.com/xero/callback"
APP_ID, APP_SECRET = "onboarding-app", "onboarding-secret"
NEW_APP_DAY = dt.date(2026, 3, 2)  # the first day on which Xero requires granular scopes
GRANULAR = "openid profile email offline_access accounting.invoices accounting.contacts accounting.settings"


@dataclass
class Onboarding:
    """A new-style app (granular scopes only) with two registered redirect URIs, and two organisations."""

    sandbox: XeroSandbox
    backend: SandboxBackend
    tenants: list[str]


@pytest.fixture
def onboarding(sandbox: XeroSandbox) -> Iterator[Onboarding]:
    backend = sandbox.backend
    backend.reset()
    tenants = [backend.add_tenant("First Org"), backend.add_tenant("Second Org")]
    backend.identity.register_app(APP_ID, APP_SECRET, redirect_uris=[REDIRECT_URI, OTHER_REDIRECT_URI],
                                  created=NEW_APP_DAY)
    yield Onboarding(sandbox, backend, tenants)
    backend.reset()


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _authorize(sandbox: XeroSandbox, **params: str | None) -> Any:
    """The browser's GET, not following the redirect. A None parameter is left out."""
    query = {"response_type": "code", "client_id": APP_ID, "redirect_uri": REDIRECT_URI, "scope": GRANULAR, **params}
    url = f"{sandbox.url}/identity/connect/authorize?" + urlencode(
        {k: v for k, v in query.items() if v is not None}, quote_via=quote)
    return HTTP.request("GET", url, redirect=False)


def _sent_back(response: Any, redirect_uri: str = REDIRECT_URI) -> dict[str, str]:
    """The parameters of the redirect to ``redirect_uri``."""
    assert response.status == 302, response.data
    base, _, query = response.headers["Location"].partition("?")
    assert base == redirect_uri
    return dict(parse_qsl(query, keep_blank_values=True, strict_parsing=True))


def _token_request(sandbox: XeroSandbox, fields: dict[str, str], client_id: str, secret: str,
                   basic: bool = True) -> tuple[int, dict[str, Any]]:
    headers = {}
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    else:
        fields = {**fields, "client_id": client_id, "client_secret": secret}
    response = HTTP.request("POST", sandbox.url + "/connect/token", fields=fields, encode_multipart=False,
                            headers=headers)
    return response.status, json.loads(response.data)


def _exchange(sandbox: XeroSandbox, code: str, redirect_uri: str | None = REDIRECT_URI, verifier: str | None = None,
              client_id: str = APP_ID, secret: str = APP_SECRET, basic: bool = True) -> tuple[int, dict[str, Any]]:
    fields = {"grant_type": "authorization_code", "code": code}
    if redirect_uri is not None:
        fields["redirect_uri"] = redirect_uri
    if verifier is not None:
        fields["code_verifier"] = verifier
    return _token_request(sandbox, fields, client_id, secret, basic)


def _onboard(sandbox: XeroSandbox, scope: str = GRANULAR) -> dict[str, Any]:
    """The whole flow with PKCE: the token answer."""
    verifier, challenge = _pkce()
    back = _sent_back(_authorize(sandbox, scope=scope, state="s", code_challenge=challenge, code_challenge_method="S256"))
    status, token = _exchange(sandbox, back["code"], verifier=verifier)
    assert status == 200, token
    return token


def _api(sandbox: XeroSandbox, access_token: str, method: str, path: str, tenant_id: str | None = None,
         body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
    if tenant_id:
        headers["xero-tenant-id"] = tenant_id
    if body is not None:
        headers["Content-Type"] = "application/json"
    response = HTTP.request(method, sandbox.url + path, headers=headers,
                            body=None if body is None else json.dumps(body))
    return response.status, json.loads(response.data) if response.data else None


def test_authorization_code_flow_with_pkce_and_state(onboarding: Onboarding) -> None:
    sandbox, backend, tenants = onboarding.sandbox, onboarding.backend, onboarding.tenants
    backend.identity.set_consent(APP_ID, tenants)
    verifier, challenge = _pkce()
    state = "a b+c/d?e=f&g=%20~é"
    back = _sent_back(_authorize(sandbox, state=state, code_challenge=challenge, code_challenge_method="S256"))
    assert back["state"] == state and back["scope"] == GRANULAR and back["code"]

    status, token = _exchange(sandbox, back["code"], verifier=verifier)
    assert status == 200
    assert set(token) == {"id_token", "access_token", "expires_in", "token_type", "refresh_token", "scope"}
    assert (token["token_type"], token["expires_in"], token["scope"]) == ("Bearer", 1800, GRANULAR)

    status, connections = _api(sandbox, token["access_token"], "GET", "/connections")
    assert status == 200
    assert sorted((c["tenantId"], c["tenantName"], c["tenantType"]) for c in connections) == sorted(
        [(tenants[0], "First Org", "ORGANISATION"), (tenants[1], "Second Org", "ORGANISATION")])
    assert len({c["authEventId"] for c in connections}) == 1  # one consent, one auth event
    status, body = _api(sandbox, token["access_token"], "GET", "/api.xro/2.0/Organisation", tenant_id=tenants[1])
    assert status == 200 and body["Organisations"][0]["Name"] == "Second Org"

    # The refresh token starts a rotating chain like any other.
    status, refreshed = _token_request(sandbox, {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
                                       APP_ID, APP_SECRET, basic=False)
    assert status == 200 and refreshed["refresh_token"] != token["refresh_token"] and refreshed["scope"] == GRANULAR


def test_connections_filtered_by_auth_event(onboarding: Onboarding) -> None:
    sandbox, backend = onboarding.sandbox, onboarding.backend
    first, second = onboarding.tenants
    third = backend.add_tenant("Third Org")
    backend.identity.set_consent(APP_ID, [first, second])
    early = _onboard(sandbox)["access_token"]
    backend.identity.set_consent(APP_ID, [second, third])  # a later consent reconnects the second
    late = _onboard(sandbox)["access_token"]

    events = {c["tenantId"]: c["authEventId"] for c in _api(sandbox, early, "GET", "/connections")[1]}
    assert set(events) == {first, second} and events[first] != events[second]
    status, rows = _api(sandbox, early, "GET", f"/connections?authEventId={events[first]}")
    assert status == 200 and [r["tenantId"] for r in rows] == [first]
    rows = _api(sandbox, late, "GET", f"/connections?authEventId={events[second]}")[1]
    assert sorted(r["tenantId"] for r in rows) == sorted([second, third])


def test_redirect_uri_may_carry_its_own_query(onboarding: Onboarding) -> None:
    uri = "http://127.0.0.1:9000/cb?org=astute"
    onboarding.backend.identity.register_app("query-app", "secret", redirect_uris=[uri])
    onboarding.backend.identity.set_consent("query-app", onboarding.tenants[:1])
    response = _authorize(onboarding.sandbox, client_id="query-app", redirect_uri=uri, state="xyz")
    assert response.status == 302
    location = response.headers["Location"]
    assert location.startswith(uri + "&code=")
    assert dict(parse_qsl(location.partition("?")[2]))["state"] == "xyz"


@pytest.mark.parametrize("redirect_uri", [
    None, "", "http://localhost:8765/callback/", "http://localhost:8765/callback?x=1", "http://localhost:8765/Callback",
    "https://attacker.example/callback", "http://localhost:8766/callback",
])
def test_unregistered_redirect_uri_is_an_error_page_never_a_redirect(onboarding: Onboarding,
                                                                     redirect_uri: str | None) -> None:
    onboarding.backend.identity.set_consent(APP_ID, onboarding.tenants)
    response = _authorize(onboarding.sandbox, redirect_uri=redirect_uri, state="s")
    assert response.status == 400
    assert "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")
    assert b"unauthorized_client" in response.data and b"Invalid redirect_uri" in response.data
    assert onboarding.backend.identity.codes == {}


@pytest.mark.parametrize("client_id", [None, "", "someone-else"])
def test_unknown_client_is_an_error_page(onboarding: Onboarding, client_id: str | None) -> None:
    response = _authorize(onboarding.sandbox, client_id=client_id, state="s")
    assert response.status == 400 and "Location" not in response.headers
    assert b"Unknown client" in response.data


def test_without_consent_the_user_comes_back_with_access_denied(onboarding: Onboarding) -> None:
    sandbox, identity = onboarding.sandbox, onboarding.backend.identity
    assert _sent_back(_authorize(sandbox, state="one")) == {"error": "access_denied", "state": "one"}
    identity.set_consent(APP_ID, onboarding.tenants)
    assert "code" in _sent_back(_authorize(sandbox, state="two"))
    identity.set_consent(APP_ID, None)  # this time the person cancels
    assert _sent_back(_authorize(sandbox)) == {"error": "access_denied"}
    with pytest.raises(KeyError):
        identity.set_consent("unregistered", [])


@pytest.mark.parametrize("params, error", [
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"response_type": None}, "unsupported_response_type"),
    ({"scope": "openid offline_access accounting.transactions accounting.contacts"}, "invalid_scope"),
    ({"scope": "accounting.transactions.read"}, "invalid_scope"),
    ({"scope": "accounting.reports.read"}, "invalid_scope"),
    ({"scope": "accounting.invoices accounting.nonsense"}, "invalid_scope"),
    ({"scope": ""}, "invalid_scope"),
    ({"code_challenge": _pkce()[1], "code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": _pkce()[1]}, "invalid_request"),  # no method means plain
    ({"code_challenge": "too-short", "code_challenge_method": "S256"}, "invalid_request"),
    ({"code_challenge_method": "S256"}, "invalid_request"),
])
def test_refusals_after_the_redirect_uri_is_trusted_go_back_to_it(onboarding: Onboarding, params: dict[str, str | None],
                                                                  error: str) -> None:
    onboarding.backend.identity.set_consent(APP_ID, onboarding.tenants)
    back = _sent_back(_authorize(onboarding.sandbox, state="st&te", **params))
    assert back == {"error": error, "state": "st&te"}


def test_accounting_transactions_is_refused_to_new_apps_only(onboarding: Onboarding) -> None:
    sandbox, backend = onboarding.sandbox, onboarding.backend
    backend.identity.set_consent(APP_ID, onboarding.tenants)
    broad = "offline_access accounting.transactions accounting.contacts accounting.settings"
    assert _sent_back(_authorize(sandbox, scope=broad))["error"] == "invalid_scope"
    with pytest.raises(ValueError, match="invalid_scope"):
        backend.authorise(APP_ID, onboarding.tenants, scope=broad)
    # The day before the cut-over, and an app registered without a day: the broad scopes still work.
    for client_id, created in (("older-app", NEW_APP_DAY - dt.timedelta(days=1)), ("classic-app", None)):
        backend.identity.register_app(client_id, "secret", redirect_uris=[REDIRECT_URI], created=created)
        backend.identity.set_consent(client_id, onboarding.tenants[:1])
        back = _sent_back(_authorize(sandbox, client_id=client_id, scope=broad))
        status, token = _exchange(sandbox, back["code"], client_id=client_id, secret="secret")
        assert status == 200 and token["scope"] == broad
        contact = backend.add_contact(onboarding.tenants[0], f"Customer of {client_id}")
        status, body = _api(sandbox, token["access_token"], "PUT", "/api.xro/2.0/Invoices?summarizeErrors=false",
                            tenant_id=onboarding.tenants[0], body={"Invoices": [_invoice(contact)]})
        assert status == 200 and body["Invoices"][0]["StatusAttributeString"] == "OK"


def test_code_is_single_use(onboarding: Onboarding) -> None:
    onboarding.backend.identity.set_consent(APP_ID, onboarding.tenants)
    code = _sent_back(_authorize(onboarding.sandbox))["code"]
    assert _exchange(onboarding.sandbox, code)[0] == 200
    assert _exchange(onboarding.sandbox, code) == (400, {"error": "invalid_grant"})


def test_code_expires_after_five_minutes(onboarding: Onboarding) -> None:
    sandbox, backend = onboarding.sandbox, onboarding.backend
    backend.identity.set_consent(APP_ID, onboarding.tenants)
    in_time = _sent_back(_authorize(sandbox))["code"]
    backend.advance(299)
    assert _exchange(sandbox, in_time)[0] == 200
    events = {c.auth_event_id for c in backend.identity.connections.values()}
    late = _sent_back(_authorize(sandbox))["code"]
    backend.advance(301)
    assert _exchange(sandbox, late) == (400, {"error": "invalid_grant"})
    assert {c.auth_event_id for c in backend.identity.connections.values()} == events  # no new consent was made


def test_redirect_uri_must_match_the_authorize_request(onboarding: Onboarding) -> None:
    sandbox = onboarding.sandbox
    onboarding.backend.identity.set_consent(APP_ID, onboarding.tenants)
    for presented in (REDIRECT_URI, None):  # another registered URI, or none at all
        code = _sent_back(_authorize(sandbox, redirect_uri=OTHER_REDIRECT_URI), OTHER_REDIRECT_URI)["code"]
        assert _exchange(sandbox, code, redirect_uri=presented) == (400, {"error": "invalid_grant"})
    code = _sent_back(_authorize(sandbox, redirect_uri=OTHER_REDIRECT_URI), OTHER_REDIRECT_URI)["code"]
    assert _exchange(sandbox, code, redirect_uri=OTHER_REDIRECT_URI)[0] == 200


def test_pkce_verifier_must_match_the_challenge(onboarding: Onboarding) -> None:
    sandbox = onboarding.sandbox
    onboarding.backend.identity.set_consent(APP_ID, onboarding.tenants)
    verifier, challenge = _pkce()

    def code(**pkce: str) -> str:
        return _sent_back(_authorize(sandbox, **pkce))["code"]

    spent = code(code_challenge=challenge, code_challenge_method="S256")
    assert _exchange(sandbox, spent, verifier=_pkce()[0]) == (400, {"error": "invalid_grant"})
    # A failed exchange spends the code: the right verifier comes too late.
    assert _exchange(sandbox, spent, verifier=verifier) == (400, {"error": "invalid_grant"})
    assert _exchange(sandbox, code(code_challenge=challenge, code_challenge_method="S256")) == (
        400, {"error": "invalid_grant"})  # missing
    assert _exchange(sandbox, code(code_challenge=challenge, code_challenge_method="S256"), verifier=challenge) == (
        400, {"error": "invalid_grant"})  # the challenge itself is no verifier
    assert _exchange(sandbox, code(), verifier=verifier) == (400, {"error": "invalid_grant"})  # no challenge was sent
    assert _exchange(sandbox, code())[0] == 200  # PKCE is optional for an app with a secret


def test_code_exchange_authenticates_the_client(onboarding: Onboarding) -> None:
    sandbox, identity = onboarding.sandbox, onboarding.backend.identity
    identity.set_consent(APP_ID, onboarding.tenants)
    identity.register_app("other-app", "other-secret", redirect_uris=[REDIRECT_URI])
    code = _sent_back(_authorize(sandbox))["code"]
    assert _exchange(sandbox, code, secret="wrong") == (400, {"error": "invalid_client"})
    assert _exchange(sandbox, code, client_id="other-app", secret="other-secret") == (400, {"error": "invalid_grant"})
    # Neither spent it: its own client, authenticated in the form this time, still can.
    status, token = _exchange(sandbox, code, basic=False)
    assert status == 200 and token["access_token"]


def test_without_offline_access_there_is_no_refresh_token(onboarding: Onboarding) -> None:
    sandbox, tenants = onboarding.sandbox, onboarding.tenants
    onboarding.backend.identity.set_consent(APP_ID, tenants)
    token = _onboard(sandbox, scope="openid accounting.invoices accounting.contacts")
    assert set(token) == {"id_token", "access_token", "expires_in", "token_type", "scope"}
    assert token["scope"] == "openid accounting.invoices accounting.contacts"
    # No openid either: no id_token. The organisations are still connected.
    token = _onboard(sandbox, scope="accounting.invoices")
    assert set(token) == {"access_token", "expires_in", "token_type", "scope"}
    assert sorted(c["tenantId"] for c in _api(sandbox, token["access_token"], "GET", "/connections")[1]) == sorted(tenants)
    # Signing in alone (user scopes only) chooses no organisation.
    token = _onboard(sandbox, scope="openid profile email")
    assert _api(sandbox, token["access_token"], "GET", "/connections") == (200, [])


def _invoice(contact_id: str) -> dict[str, Any]:
    return {"Type": "ACCREC", "Contact": {"ContactID": contact_id}, "Status": "AUTHORISED",
            "LineItems": [{"Description": "Consulting", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200"}]}


def test_granular_scopes_open_invoices_and_contacts_and_read_only_cannot_write(onboarding: Onboarding) -> None:
    sandbox, backend = onboarding.sandbox, onboarding.backend
    tenant = onboarding.tenants[0]
    backend.identity.set_consent(APP_ID, [tenant])
    contact = backend.add_contact(tenant, "Granular Customer")
    put_invoices = "/api.xro/2.0/Invoices?summarizeErrors=false"

    writer = _onboard(sandbox, scope="offline_access accounting.invoices accounting.contacts")["access_token"]
    status, body = _api(sandbox, writer, "PUT", put_invoices, tenant_id=tenant, body={"Invoices": [_invoice(contact)]})
    assert status == 200 and body["Invoices"][0]["StatusAttributeString"] == "OK"
    status, body = _api(sandbox, writer, "GET", "/api.xro/2.0/Contacts", tenant_id=tenant)
    assert status == 200 and [c["Name"] for c in body["Contacts"]] == ["Granular Customer"]
    status, body = _api(sandbox, writer, "GET", "/api.xro/2.0/Organisation", tenant_id=tenant)
    assert (status, body["Detail"]) == (403, "AuthorizationUnsuccessful")  # no accounting.settings

    reader = _onboard(sandbox, scope="accounting.invoices.read accounting.contacts.read")["access_token"]
    status, body = _api(sandbox, reader, "GET", "/api.xro/2.0/Invoices", tenant_id=tenant)
    assert status == 200 and len(body["Invoices"]) == 1
    status, body = _api(sandbox, reader, "PUT", put_invoices, tenant_id=tenant, body={"Invoices": [_invoice(contact)]})
    assert (status, body["Detail"]) == (403, "AuthorizationUnsuccessful")
    assert len(backend.invoices(tenant)) == 1
    assert _api(sandbox, reader, "PUT", "/api.xro/2.0/Contacts", tenant_id=tenant, body={"Name": "New"})[0] == 403


@pytest.mark.parametrize("scope, resource, method, sub_resource, allowed", [
    ("accounting.invoices", "invoices", "PUT", None, True),
    ("accounting.invoices", "creditnotes", "PUT", "allocations", True),
    ("accounting.invoices.read", "invoices", "GET", "history", True),
    ("accounting.invoices.read", "creditnotes", "PUT", None, False),
    ("accounting.invoices", "invoices", "PUT", "attachments", False),
    ("accounting.attachments", "invoices", "PUT", "attachments", True),
    ("accounting.payments", "payments", "PUT", None, True),
    ("accounting.payments.read", "payments", "PUT", None, False),
    ("accounting.payments", "invoices", "GET", None, False),
    ("accounting.transactions", "payments", "PUT", None, True),
    ("accounting.transactions", "creditnotes", "PUT", None, True),
    ("accounting.transactions.read", "invoices", "GET", None, True),
    ("accounting.transactions", "contacts", "GET", None, False),
    ("accounting.banktransactions", "banktransfers", "PUT", None, True),
    ("accounting.manualjournals.read", "manualjournals", "GET", None, True),
    ("accounting.journals.read", "journals", "GET", None, True),
    ("accounting.contacts", "contacts", "POST", None, True),
    ("accounting.settings.read", "trackingcategories", "GET", None, True),
    ("accounting.settings", "currencies", "GET", None, True),
    ("accounting.invoices", "organisation", "GET", None, False),
    ("accounting.invoices", "items", "GET", None, True),
])
def test_scope_table(scope: str, resource: str, method: str, sub_resource: str | None, allowed: bool) -> None:
    assert SandboxApi._scope_allows(scope, resource, method, sub_resource) is allowed


def test_register_app_checks_redirect_uris(onboarding: Onboarding) -> None:
    identity = onboarding.backend.identity
    for uri in ("http://example.com/callback", "https://*.example.com/cb", "https://example.com/cb#frag", "/callback"):
        with pytest.raises(ValueError):
            identity.register_app("bad-app", "s", redirect_uris=[uri])
    with pytest.raises(ValueError):
        identity.register_app("bad-app", "s", redirect_uris=[f"https://example.com/{n}" for n in range(51)])
    with pytest.raises(ValueError):
        identity.register_app("bad-app", "s", scope="accounting.invoices")  # scopes up front are for custom connections
    assert "bad-app" not in identity.apps
