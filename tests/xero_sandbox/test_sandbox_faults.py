"""Fault switches and the request log."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import urllib3
from xero_python.accounting import Contact, Invoice, Invoices, LineItem
from xero_python.exceptions import HTTPStatusException, RateLimitException

from .sandbox_helpers import Xero, refresh


def _batch(contact_id: str, number: str) -> Invoices:
    return Invoices(invoices=[Invoice(type="ACCREC", contact=Contact(contact_id=contact_id), invoice_number=number,
                                      date=dt.date(2026, 7, 1), line_items=[LineItem(
                                          description="x", quantity=1, unit_amount=Decimal("1"), account_code="200")])])


def test_fail_next_answers_without_acting(xero: Xero) -> None:
    contact_id = xero.backend.add_contact(xero.tenant_id, "Fault Co")
    xero.backend.faults.fail_next(2, status=503)
    for _ in range(2):
        with pytest.raises(HTTPStatusException) as info:
            xero.accounting.create_invoices(xero.tenant_id, _batch(contact_id, "F-1"))
        assert info.value.status == 503
    assert xero.backend.invoices(xero.tenant_id) == []
    xero.accounting.get_invoices(xero.tenant_id)  # GETs are not matched by the default rule
    xero.accounting.create_invoices(xero.tenant_id, _batch(contact_id, "F-1"))
    assert len(xero.backend.invoices(xero.tenant_id)) == 1
    assert xero.backend.faults.injected == {"fail_next": 2}
    assert [r.fault for r in xero.backend.requests if r.method == "PUT"] == ["fail_next", "fail_next", None]


def test_drop_after_commit_then_idempotent_retry_recovers_the_answer(xero: Xero) -> None:
    contact_id = xero.backend.add_contact(xero.tenant_id, "Fault Co")
    xero.backend.faults.drop_after_commit_next(1)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        xero.accounting.create_invoices(xero.tenant_id, _batch(contact_id, "D-1"), idempotency_key="drop-1")
    committed = xero.backend.invoices(xero.tenant_id)
    assert [i["InvoiceNumber"] for i in committed] == ["D-1"]
    retry = xero.accounting.create_invoices(xero.tenant_id, _batch(contact_id, "D-1"), idempotency_key="drop-1")
    assert retry.invoices[0].invoice_id == committed[0]["InvoiceID"]
    assert len(xero.backend.invoices(xero.tenant_id)) == 1
    assert xero.backend.faults.injected == {"drop_after_commit": 1}
    dropped = [r for r in xero.backend.requests if r.dropped]
    assert len(dropped) == 1 and dropped[0].status == 200


def test_lost_token_response_is_recovered_within_grace(xero: Xero) -> None:
    xero.backend.faults.drop_after_commit_next(1, path_prefix="/connect/token", method="POST")
    current = xero.holder.token["refresh_token"]
    with pytest.raises(urllib3.exceptions.ProtocolError):
        refresh(xero.sandbox, xero.api_client, current)
    assert refresh(xero.sandbox, xero.api_client, current)["access_token"]


def test_latency(xero: Xero) -> None:
    xero.backend.faults.latency(0.3, path_prefix="/api.xro/2.0/Organisation")
    started = time.monotonic()
    xero.accounting.get_organisations(xero.tenant_id)
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    xero.accounting.get_currencies(xero.tenant_id)
    assert time.monotonic() - started < 0.3
    xero.api_client.rest_client.pool_manager = urllib3.PoolManager(retries=False)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        xero.accounting.get_organisations(xero.tenant_id, _request_timeout=(1, 0.1))
    assert xero.backend.faults.injected["latency"] == 2


def test_expire_access_tokens(xero: Xero) -> None:
    xero.backend.faults.expire_access_tokens()
    with pytest.raises(HTTPStatusException) as info:
        xero.accounting.get_organisations(xero.tenant_id)
    assert info.value.status == 401
    xero.holder.save(refresh(xero.sandbox, xero.api_client, xero.holder.token["refresh_token"]))
    xero.accounting.get_organisations(xero.tenant_id)
    assert xero.backend.faults.injected == {"expire_access_tokens": 1}


def test_rate_limit_next(xero: Xero) -> None:
    xero.backend.faults.rate_limit_next(1, problem="day", retry_after=3600)
    with pytest.raises(RateLimitException) as info:
        xero.accounting.get_organisations(xero.tenant_id)
    assert info.value.rate_limit == "day" and info.value.headers["Retry-After"] == "3600"
    xero.accounting.get_organisations(xero.tenant_id)
    assert xero.backend.faults.injected == {"rate_limit_next": 1}


def test_clear_disarms_and_zeroes(xero: Xero) -> None:
    faults = xero.backend.faults
    faults.fail_next(5, status=500, path_prefix="/api.xro/2.0", method=None)
    with pytest.raises(HTTPStatusException):
        xero.accounting.get_organisations(xero.tenant_id)
    faults.clear()
    assert faults.injected == {}
    xero.accounting.get_organisations(xero.tenant_id)


def test_request_log_records_what_happened(xero: Xero) -> None:
    contact_id = xero.backend.add_contact(xero.tenant_id, "Log Co")
    xero.accounting.create_invoices(xero.tenant_id, _batch(contact_id, "R-1"), summarize_errors=False,
                                    idempotency_key="log-key")
    record = xero.backend.requests[-1]
    assert (record.method, record.path, record.status, record.tenant_id, record.idempotency_key) == (
        "PUT", "/api.xro/2.0/Invoices", 200, xero.tenant_id, "log-key")
    assert record.query == {"summarizeErrors": "False"}
    assert record.body_size > 0 and record.started <= record.ended
    token_calls = [r for r in xero.backend.requests if r.path == "/connect/token"]
    assert len(token_calls) == 1 and token_calls[0].tenant_id is None


def test_reset_forgets_everything(xero: Xero) -> None:
    xero.backend.limits.per_minute = 1
    xero.backend.faults.fail_next(1)
    xero.backend.advance(100)
    xero.backend.reset()
    assert xero.backend.tenants == {} and xero.backend.requests == []
    assert xero.backend.limits.per_minute == 60 and xero.backend.faults.injected == {}
    assert abs(xero.backend.clock() - time.time()) < 5


def test_standalone_entry_point_prints_url() -> None:
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "xero_sandbox", "--host", "127.0.0.1", "--port", "0",
         "--client-id", "demo", "--client-secret", "demo-secret", "--tenant", "Demo Org"],
        cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
        seed = json.loads(process.stdout.readline())
        assert url.startswith("http://127.0.0.1:") and seed["url"] == url and "Demo Org" in seed["tenants"]
        response = urllib3.PoolManager(retries=False).request(
            "POST", url + "/connect/token", encode_multipart=False, fields={
                "grant_type": "refresh_token", "refresh_token": seed["refresh_token"],
                "client_id": "demo", "client_secret": "demo-secret"})
        assert response.status == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
