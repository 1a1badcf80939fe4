"""OAuth2: rotation, grace reuse, expiry, client auth, connections, 401/403."""

from __future__ import annotations

import base64
import json
import time

import pytest
import urllib3
from xero_python.accounting import AccountingApi
from xero_python.api_client.oauth2 import TokenApi
from xero_python.exceptions import HTTPStatusException

from xero_sandbox import XeroSandbox

from .sandbox_helpers import CLIENT_ID, CLIENT_SECRET, TokenHolder, Xero, make_api_client, refresh


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
    assert "refresh_token" not in token and token["expires_in"] == 1800
    holder.save({**token, "scope": token["scope"].split(), "expires_at": time.time() + 1800})
    accounting = AccountingApi(api_client, base_url=sandbox.url + "/api.xro/2.0")
    assert accounting.get_organisations(tenant_id).organisations[0].name == "Custom Org"


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
