"""Fault switches and the request log."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import struct
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import urllib3
from xero_python.accounting import Contact, Invoice, Invoices, LineItem
from xero_python.exceptions import HTTPStatusException, RateLimitException

from .sandbox_helpers import Xero, raw_call, refresh


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
    answered = len(xero.backend.requests)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        xero.accounting.get_organisations(xero.tenant_id, _request_timeout=(1, 0.1))
    assert xero.backend.faults.injected["latency"] == 2
    # The sandbox still answers the request the client gave up on: let it, so that it never lands in the
    # next test's request log (or after the reset, in an organisation that no longer exists).
    deadline = time.monotonic() + 5
    while len(xero.backend.requests) == answered and time.monotonic() < deadline:
        time.sleep(0.05)
    assert xero.backend.requests[-1].status == 200


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


def test_error_body_next_answers_a_raw_non_json_body(xero: Xero) -> None:
    contact_id = xero.backend.add_contact(xero.tenant_id, "Fault Co")
    xero.backend.faults.error_body_next(2)
    with pytest.raises(HTTPStatusException) as info:
        xero.accounting.create_invoices(xero.tenant_id, _batch(contact_id, "E-1"))
    raw = info.value.http_resp  # xero-python's 400 exception parses the body as JSON: .status raises here
    assert raw.status == 400 and raw.data == b"<html><body>Bad Request</body></html>"
    assert raw.getheader("Content-Type") == "text/html; charset=utf-8"
    with pytest.raises(ValueError):
        info.value.status  # noqa: B018 - the SDK pitfall this fault exists for
    xero.backend.faults.error_body_next(1, status=502, body=b"upstream timed out", content_type="text/plain",
                                        path_prefix="/api.xro/2.0/Contacts", method="GET")
    status, body = raw_call(xero, "GET", "/api.xro/2.0/Contacts")
    assert (status, body) == (502, b"upstream timed out")
    status, body = raw_call(xero, "PUT", "/api.xro/2.0/Invoices", {"Invoices": [{
        "Type": "ACCREC", "Contact": {"ContactID": contact_id}, "InvoiceNumber": "E-1",
        "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 1, "AccountCode": "200"}]}]})
    assert (status, body) == (400, b"<html><body>Bad Request</body></html>")  # the second of two
    assert xero.backend.invoices(xero.tenant_id) == []  # nothing was done
    xero.accounting.create_invoices(xero.tenant_id, _batch(contact_id, "E-1"))
    assert len(xero.backend.invoices(xero.tenant_id)) == 1
    assert xero.backend.faults.injected == {"error_body": 3}
    assert [r.fault for r in xero.backend.requests if r.path != "/connect/token"] == ["error_body"] * 3 + [None]


def test_commit_late_lands_after_the_client_gave_up(xero: Xero) -> None:
    """The client times out after 1 s; Xero commits at 2 s. Meanwhile other calls are served, a
    repeat with the same Idempotency-Key is refused (409) and the held call keeps its concurrency slot."""
    contact_id = xero.backend.add_contact(xero.tenant_id, "Late Co")
    xero.backend.faults.commit_late_next(2)
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        xero.accounting.create_invoices(xero.tenant_id, _batch(contact_id, "LATE-1"), idempotency_key="late-key",
                                        _request_timeout=(5, 1))
    assert xero.backend.invoices(xero.tenant_id) == []  # nothing in Xero when the client gives up
    assert xero.accounting.get_invoices(xero.tenant_id, invoice_numbers=["LATE-1"]).invoices == []  # not blocked
    with pytest.raises(HTTPStatusException) as info:
        xero.accounting.create_invoices(xero.tenant_id, _batch(contact_id, "LATE-1"), idempotency_key="late-key")
    assert info.value.status == 409 and "still being processed" in json.loads(info.value.body)["Detail"]
    xero.backend.limits.concurrent = 1  # the held request still occupies its slot
    with pytest.raises(RateLimitException) as limited:
        xero.accounting.get_organisations(xero.tenant_id)
    assert limited.value.rate_limit == "concurrent"
    xero.backend.limits.concurrent = 5
    assert time.monotonic() - started < 2

    while not xero.backend.invoices(xero.tenant_id) and time.monotonic() - started < 5:
        time.sleep(0.05)
    assert [i["InvoiceNumber"] for i in xero.backend.invoices(xero.tenant_id)] == ["LATE-1"]
    assert time.monotonic() - started >= 2
    while not any(r.fault == "commit_late" for r in xero.backend.requests):
        time.sleep(0.05)  # its (unheard) answer is recorded just after the commit
    late = next(r for r in xero.backend.requests if r.fault == "commit_late")
    assert late.status == 200 and xero.backend.faults.injected == {"commit_late": 1}
    # The key now replays the late answer instead of acting again.
    again = xero.accounting.create_invoices(xero.tenant_id, _batch(contact_id, "LATE-1"), idempotency_key="late-key")
    assert again.invoices[0].invoice_id == xero.backend.invoices(xero.tenant_id)[0]["InvoiceID"]
    assert len(xero.backend.invoices(xero.tenant_id)) == 1


def test_commit_late_swallows_the_broken_pipe_of_a_client_that_hung_up(
        xero: Xero, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="xero_sandbox")
    contact_id = xero.backend.add_contact(xero.tenant_id, "Gone Co")
    xero.backend.faults.commit_late_next(0.3)
    body = json.dumps({"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": contact_id}, "InvoiceNumber": "GONE-1",
                                     "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 1,
                                                    "AccountCode": "200"}]}]}).encode()
    client = socket.create_connection((xero.sandbox.host, xero.sandbox.port))
    client.sendall(b"PUT /api.xro/2.0/Invoices HTTP/1.1\r\nHost: sandbox\r\nAuthorization: Bearer "
                   + xero.holder.token["access_token"].encode() + b"\r\nxero-tenant-id: " + xero.tenant_id.encode()
                   + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    time.sleep(0.1)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # hang up with a reset
    client.close()
    deadline = time.monotonic() + 3
    while not any("hung up" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [i["InvoiceNumber"] for i in xero.backend.invoices(xero.tenant_id)] == ["GONE-1"]
    assert any("client hung up before the answer" in r.getMessage() for r in caplog.records)
    assert not any(r.exc_info or r.levelno > logging.DEBUG for r in caplog.records if r.name.startswith("xero_sandbox"))
    xero.accounting.get_organisations(xero.tenant_id)  # and the sandbox carries on
