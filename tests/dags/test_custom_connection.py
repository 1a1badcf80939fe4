"""A Xero Custom Connection (client credentials, one organisation) runs the whole export: no refresh token,
no consent, the token fetched by client id and secret and shared by every task."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from tests.dags.conftest import AU_TENANT, GO_LIVE

pytestmark = pytest.mark.e2e


def test_the_export_runs_end_to_end_on_a_custom_connection(world, monkeypatch):
    world.xero.backend.identity.register_app("custom-au", "custom-au-secret", custom_tenant_id=AU_TENANT,
                                             created=dt.date(2026, 6, 1))
    connection = json.loads(os.environ["AIRFLOW_CONN_XERO_DEFAULT"])
    extra = {key: value for key, value in connection["extra"].items() if key != "refresh_token"}
    monkeypatch.setenv("AIRFLOW_CONN_XERO_DEFAULT", json.dumps({
        "conn_type": "xero", "login": "custom-au", "password": "custom-au-secret",
        "extra": {**extra, "grant_type": "client_credentials"}}))
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = world.data.customer("Custom Connection Customer")
    ids = [world.data.invoice(entity, customer, number=f"CC-{n:03d}", invoice_date=dt.date(2026, 6, 1) + dt.timedelta(days=n))
           for n in range(7)]
    world.data.flush()

    ok, _ = world.run()

    assert ok
    assert world.export_status() == {i: "exported" for i in ids}
    assert sorted(inv["InvoiceNumber"] for inv in world.xero_invoices()) == [f"CC-{n:03d}" for n in range(7)]
    token_calls = [r for r in world.xero.backend.requests if r.path == "/connect/token"]
    assert {r.client_id for r in token_calls} == {"custom-au"}
    assert len(token_calls) == 1, "every task of the run shares the one token until it expires"
    refresh_token = world.db.execute(
        "SELECT refresh_token FROM xero_sync.oauth_token WHERE connection_id = 'xero_default'").fetchone()[0]
    assert refresh_token is None
