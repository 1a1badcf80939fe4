"""Onboarding over HTTP against the sandbox: `astute-xero authorise` (the authorization-code flow, a browser
played by the test), Custom Connections (client credentials), and `astute-xero organisations`."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import requests

from devtools.airflow_deployment import free_port
from astute_xero.hooks import XeroHook
from astute_xero.operations.migrations import apply_migrations
from astute_xero.xero.scopes import GRANULAR_SCOPES

CLI = str(Path(sys.executable).with_name("astute-xero"))
NEW_APP = dt.date(2026, 6, 1)  # made after 2 March 2026: granular scopes only


@pytest.fixture
def astute(db, database_url):
    apply_migrations(db)
    return lambda: psycopg.connect(database_url, autocommit=True)


def start_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def consent_url_from(process: subprocess.Popen) -> str:
    for line in process.stdout:
        if line.strip().startswith("http"):
            return line.strip()
    raise AssertionError(f"no consent URL printed; stderr: {process.stderr.read()}")


def test_authorise_stores_the_first_refresh_token_where_the_pipeline_reads_it(airflow_home, xero, astute):
    au = xero.backend.add_tenant("Onboarding AU")
    nz = xero.backend.add_tenant("Onboarding NZ")
    xero.backend.add_tenant("Not ticked")
    redirect_uri = f"http://localhost:{free_port()}/callback"
    xero.backend.identity.register_app("onboarding-app", "onboarding-secret", redirect_uris=[redirect_uri], created=NEW_APP)
    xero.backend.identity.set_consent("onboarding-app", [au, nz])  # the person ticks two of the three

    process = start_cli("authorise", "--conn-id", "xero_onboarded", "--client-id", "onboarding-app",
                        "--redirect-uri", redirect_uri, "--no-browser", "--timeout", "60",
                        "--api-url", xero.url, "--identity-url", xero.url, "--login-url", xero.url,
                        env={"XERO_CLIENT_SECRET": "onboarding-secret"})
    try:
        consent = consent_url_from(process)
        assert consent.startswith(f"{xero.url}/identity/connect/authorize?")
        # The browser: Xero's consent answers with a redirect to our listener, which the browser follows.
        answer = requests.get(consent, allow_redirects=False, timeout=10)
        assert answer.status_code == 302 and answer.headers["Location"].startswith(redirect_uri + "?code=")
        assert requests.get(answer.headers["Location"], timeout=10).status_code == 200
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Onboarding AU" in out and "Onboarding NZ" in out and "Not ticked" not in out
    assert "onboarding-secret" not in out + err

    from airflow.models.connection import Connection

    stored = Connection.get_connection_from_secrets("xero_onboarded")
    assert stored.conn_type == "xero" and stored.login == "onboarding-app"
    extra = stored.extra_dejson
    assert extra["grant_type"] == "authorization_code" and extra["scope"] == GRANULAR_SCOPES and extra["refresh_token"]
    assert stored.is_extra_encrypted  # Airflow's Fernet key: never plaintext at rest

    # The pipeline starts its chain from that token: it refreshes it and reaches both organisations.
    client = XeroHook("xero_onboarded", connection=stored).client(connect=astute)
    try:
        assert sorted(c["tenantName"] for c in client.connections()) == ["Onboarding AU", "Onboarding NZ"]
    finally:
        client.close()
    token_calls = [r for r in xero.backend.requests if r.path == "/connect/token"]
    assert [r.status for r in token_calls] == [200, 200]  # the code exchange, then the pipeline's first refresh


def test_authorise_writes_no_token_airflow_would_not_read_when_a_secrets_backend_serves_the_connection(
        airflow_home, xero, tmp_path):
    """A secrets backend (here Airflow's LocalFilesystemBackend, as [secrets] backend) comes before the metadata
    database in Airflow's search path: a token written to the database would never be read. The command says
    which backend to update and writes the new extra to a file only its owner can read."""
    tenant = xero.backend.add_tenant("Vaulted Ltd")
    redirect_uri = f"http://localhost:{free_port()}/callback"
    xero.backend.identity.register_app("vault-app", "vault-secret", redirect_uris=[redirect_uri], created=NEW_APP)
    xero.backend.identity.set_consent("vault-app", [tenant])
    connections_file = tmp_path / "connections.json"
    old_token = "the-old-refresh-token-in-the-vault"
    connections_file.write_text(json.dumps({"xero_vaulted": {
        "conn_type": "xero", "login": "vault-app", "password": "vault-secret",
        "extra": json.dumps({"refresh_token": old_token, "api_url": xero.url, "identity_url": xero.url,
                             "login_url": xero.url})}}))
    backend = {"AIRFLOW__SECRETS__BACKEND": "airflow.secrets.local_filesystem.LocalFilesystemBackend",
               "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps({"connections_file_path": str(connections_file)})}

    # No --client-id and no XERO_CLIENT_SECRET: both are read from the connection, through the backend.
    process = start_cli("authorise", "--conn-id", "xero_vaulted", "--redirect-uri", redirect_uri, "--no-browser",
                        "--timeout", "60", env=backend)
    try:
        answer = requests.get(consent_url_from(process), allow_redirects=False, timeout=10)
        assert requests.get(answer.headers["Location"], timeout=10).status_code == 200
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err

    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        assert session.scalar(select(Connection).where(Connection.conn_id == "xero_vaulted")) is None, \
            "nothing in the metadata database: Airflow reads the connection from the secrets backend"
    assert "airflow.secrets.local_filesystem.LocalFilesystemBackend" in out and "[secrets] backend" in out
    (written,) = [Path(word) for word in out.split() if word.endswith(".json") and Path(word).is_file()]
    assert written.stat().st_mode & 0o777 == 0o600
    new_token = json.loads(written.read_text())["extra"]["refresh_token"]
    assert new_token and new_token != old_token
    assert json.loads(connections_file.read_text())["xero_vaulted"]["extra"].count(old_token) == 1, "not changed"
    for secret in (new_token, old_token, "vault-secret"):
        assert secret not in out + err
    written.unlink()


def test_authorise_with_classic_scopes_on_a_new_app_is_refused_and_nothing_is_stored(airflow_home, xero):
    tenant = xero.backend.add_tenant("Classic refused")
    redirect_uri = f"http://localhost:{free_port()}/callback"
    xero.backend.identity.register_app("new-app", "new-secret", redirect_uris=[redirect_uri], created=NEW_APP)
    xero.backend.identity.set_consent("new-app", [tenant])
    process = start_cli("authorise", "--conn-id", "xero_refused", "--client-id", "new-app", "--classic-scopes",
                        "--redirect-uri", redirect_uri, "--no-browser", "--timeout", "60",
                        "--api-url", xero.url, "--identity-url", xero.url, "--login-url", xero.url,
                        env={"XERO_CLIENT_SECRET": "new-secret"})
    try:
        answer = requests.get(consent_url_from(process), allow_redirects=False, timeout=10)
        assert "error=invalid_scope" in answer.headers["Location"]
        requests.get(answer.headers["Location"], timeout=10)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 1
    assert "invalid_scope" in err and "granular scopes" in err

    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    with pytest.raises(AirflowNotFoundException):
        Connection.get_connection_from_secrets("xero_refused")


def test_a_custom_connection_gets_its_token_by_client_credentials_once_until_it_expires(xero, astute, monkeypatch):
    tenant = xero.backend.add_tenant("Custom Connection Ltd")
    xero.backend.identity.register_app("custom-app", "custom-secret", custom_tenant_id=tenant, created=NEW_APP)
    monkeypatch.setenv("AIRFLOW_CONN_XERO_CUSTOM", json.dumps({
        "conn_type": "xero", "login": "custom-app", "password": "custom-secret",
        "extra": {"grant_type": "client_credentials", "api_url": xero.url, "identity_url": xero.url},
    }))
    for _ in range(3):  # three tasks, one after another: one token between them
        client = XeroHook("xero_custom").client(connect=astute)
        try:
            assert [c["tenantId"] for c in client.connections()] == [tenant]
        finally:
            client.close()
    token_calls = [r for r in xero.backend.requests if r.path == "/connect/token"]
    assert len(token_calls) == 1 and token_calls[0].status == 200
    with astute() as conn:
        refresh_token, access_token = conn.execute(
            "SELECT refresh_token, access_token FROM xero_sync.oauth_token WHERE connection_id = 'xero_custom'").fetchone()
    assert refresh_token is None and access_token.startswith("fernet:")  # no chain; the token sealed at rest

    xero.backend.advance(31 * 60)  # past the token's 30 minutes: a new one, by client credentials again
    client = XeroHook("xero_custom").client(connect=astute)
    try:
        assert [c["tenantId"] for c in client.connections()] == [tenant]
    finally:
        client.close()
    assert len([r for r in xero.backend.requests if r.path == "/connect/token"]) == 2


def test_organisations_lists_what_the_connection_reaches_beside_the_billing_entities(xero, db, database_url, astute,
                                                                                     monkeypatch):
    au = xero.backend.add_tenant("Reached AU")
    spare = xero.backend.add_tenant("Reached but unused")
    xero.backend.register_app("orgs-app", "orgs-secret")
    refresh_token = xero.backend.authorise("orgs-app", [au, spare])
    wrong = "99999999-9999-4999-8999-999999999999"
    db.execute("INSERT INTO astute.regulatory_region VALUES ('AU', 'Australia', 'AUD')")
    db.execute("INSERT INTO astute.billing_entity VALUES (1, 'Astute AU', 'AU', %s, '2026-01-01'),"
               " (2, 'Astute Typo', 'AU', %s, '2026-01-01'), (3, 'Astute Unlinked', 'AU', NULL, NULL)",
               (au.upper(), wrong))
    env = {"AIRFLOW_CONN_XERO_DEFAULT": json.dumps({
        "conn_type": "xero", "login": "orgs-app", "password": "orgs-secret",
        "extra": {"refresh_token": refresh_token, "api_url": xero.url, "identity_url": xero.url}})}
    process = start_cli("organisations", "--db-url", database_url, env=env)
    out, err = process.communicate(timeout=120)

    assert process.returncode == 1, err  # an entity points at an organisation the app cannot reach
    assert f"Reached AU  tenant {au}  <- Astute AU (billing entity 1)" in out  # tenant ids match case-insensitively
    assert f"Reached but unused  tenant {spare}  <- no billing entity uses it" in out
    assert (f"Astute Typo (billing entity 2): xero_tenant_id {wrong} is not among the organisations above") in out
    assert f"Organisations reached that no billing entity uses: 1 (Reached but unused {spare})" in out
    assert "not linked to Xero (no xero_tenant_id): Astute Unlinked (billing entity 3, not live" in out
    assert out.strip().endswith("NOT OK: fix the entities listed above.")
    assert refresh_token not in out + err and "orgs-secret" not in out + err
