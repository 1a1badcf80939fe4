"""Rate limits, concurrency, body size and HTTP/1.1 behaviour."""

from __future__ import annotations

import http.client
import json
import threading
from urllib.parse import urlsplit

import pytest
import urllib3
from xero_python.accounting import Contact, Contacts
from xero_python.exceptions import HTTPStatusException, RateLimitException

from .sandbox_helpers import Xero

HEADERS = ("X-DayLimit-Remaining", "X-MinLimit-Remaining", "X-AppMinLimit-Remaining")


def test_every_accounting_response_carries_remaining_headers(xero: Xero) -> None:
    xero.accounting.get_organisations(xero.tenant_id)
    headers = xero.api_client.last_response.getheaders()
    assert [headers[h] for h in HEADERS] == ["4999", "59", "9999"]


def test_minute_budget_then_429_with_retry_after(xero: Xero) -> None:
    for _ in range(60):
        xero.accounting.get_organisations(xero.tenant_id)
    xero.backend.advance(15)
    with pytest.raises(RateLimitException) as info:
        xero.accounting.get_organisations(xero.tenant_id)
    exc = info.value
    assert exc.status == 429 and exc.rate_limit == "minute"
    assert exc.body == b"" and exc.headers["X-Rate-Limit-Problem"] == "minute"
    assert 40 <= int(exc.headers["Retry-After"]) <= 45
    assert exc.headers["X-MinLimit-Remaining"] == "0"
    xero.backend.advance(int(exc.headers["Retry-After"]))
    xero.accounting.get_organisations(xero.tenant_id)  # the window has rolled over
    assert xero.api_client.last_response.getheader("X-MinLimit-Remaining") == "59"


def test_day_budget(xero: Xero) -> None:
    xero.backend.limits.per_day = 3
    for _ in range(3):
        xero.accounting.get_organisations(xero.tenant_id)
    with pytest.raises(RateLimitException) as info:
        xero.accounting.get_organisations(xero.tenant_id)
    assert info.value.rate_limit == "day" and int(info.value.headers["Retry-After"]) > 86000


def test_app_minute_budget(xero: Xero) -> None:
    xero.backend.limits.app_per_minute = 2
    xero.accounting.get_organisations(xero.tenant_id)
    xero.accounting.get_organisations(xero.tenant_id)
    with pytest.raises(RateLimitException) as info:
        xero.accounting.get_organisations(xero.tenant_id)
    assert info.value.rate_limit == "appminute"


def test_concurrent_calls_beyond_five_are_429(xero: Xero) -> None:
    xero.backend.faults.latency(0.6, path_prefix="/api.xro/2.0/Organisation")
    barrier = threading.Barrier(7)
    outcomes: list[str] = []

    def call() -> None:
        barrier.wait()
        try:
            xero.accounting.get_organisations(xero.tenant_id)
            outcomes.append("ok")
        except RateLimitException as exc:
            outcomes.append(exc.rate_limit)

    threads = [threading.Thread(target=call) for _ in range(7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["concurrent", "concurrent"] + ["ok"] * 5


def test_body_over_the_limit_is_413(xero: Xero) -> None:
    big = json.dumps({"Contacts": [{"Name": "n" * 200, "EmailAddress": "e"} for _ in range(18_000)]})
    assert len(big) > xero.backend.limits.body_limit_bytes
    response = urllib3.PoolManager(retries=False).request(
        "PUT", xero.sandbox.url + "/api.xro/2.0/Contacts", body=big,
        headers={"Authorization": "Bearer " + xero.holder.token["access_token"], "xero-tenant-id": xero.tenant_id})
    assert response.status == 413
    # Through the SDK with a smaller limit, and nothing was created either way.
    xero.backend.limits.body_limit_bytes = 1000
    with pytest.raises(HTTPStatusException) as info:
        xero.accounting.create_contacts(xero.tenant_id, Contacts(contacts=[Contact(name=f"c{i:04d}" * 20) for i in range(20)]))
    assert info.value.status == 413
    assert xero.backend.contacts(xero.tenant_id) == []
    assert xero.backend.requests[-1].body_size > 1000


def test_keep_alive_survives_errors(xero: Xero) -> None:
    """One socket, several answers of every kind: Content-Length is always right."""
    parts = urlsplit(xero.sandbox.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    auth = {"Authorization": "Bearer " + xero.holder.token["access_token"], "xero-tenant-id": xero.tenant_id}
    xero.backend.faults.rate_limit_next(1)
    for method, path, body, expected in (
            ("GET", "/api.xro/2.0/Organisation", None, 429), ("GET", "/api.xro/2.0/Nope", None, 404),
            ("GET", "/api.xro/2.0/Organisation", None, 200), ("PUT", "/api.xro/2.0/Contacts", "{not json", 400),
            ("GET", "/connections", None, 200)):
        conn.request(method, path, body=body, headers=auth)
        response = conn.getresponse()
        data = response.read()
        assert response.status == expected, (path, data)
        assert int(response.getheader("Content-Length")) == len(data)
        assert response.getheader("Connection") != "close"
    conn.close()


def test_scaled_windows_roll_and_retry_after_follow_them(xero: Xero) -> None:
    """A benchmark shortens Xero's minute and day: the windows roll, and Retry-After counts, in their seconds."""
    xero.backend.limits.minute_s, xero.backend.limits.per_minute = 6.0, 3
    xero.backend.limits.day_s, xero.backend.limits.per_day = 30.0, 5
    for _ in range(3):
        xero.accounting.get_organisations(xero.tenant_id)
    xero.backend.advance(1.5)
    with pytest.raises(RateLimitException) as info:
        xero.accounting.get_organisations(xero.tenant_id)
    assert info.value.rate_limit == "minute" and info.value.headers["Retry-After"] == "5"  # ceil(6 - 1.5)
    xero.backend.advance(5)  # the 6 s minute has rolled
    xero.accounting.get_organisations(xero.tenant_id)
    xero.accounting.get_organisations(xero.tenant_id)
    assert xero.api_client.last_response.getheader("X-DayLimit-Remaining") == "0"
    with pytest.raises(RateLimitException) as info:
        xero.accounting.get_organisations(xero.tenant_id)
    assert info.value.rate_limit == "day" and info.value.headers["Retry-After"] == "24"  # ceil(30 - 6.5)
    xero.backend.advance(24)  # the 30 s day has rolled too
    xero.accounting.get_organisations(xero.tenant_id)
    headers = xero.api_client.last_response.getheaders()
    assert (headers["X-DayLimit-Remaining"], headers["X-MinLimit-Remaining"]) == ("4", "2")


def test_an_organisation_of_its_own_day_limit(xero: Xero) -> None:
    """Xero's Starter tier: 1,000 calls a day for that organisation, 5,000 for the others."""
    other = xero.backend.add_tenant("Other Org")
    xero.backend.limits.tenant_per_day = {xero.tenant_id.upper(): 2}  # tenant ids match case-insensitively
    xero.accounting.get_organisations(xero.tenant_id)
    assert xero.api_client.last_response.getheader("X-DayLimit-Remaining") == "1"
    xero.accounting.get_organisations(xero.tenant_id)
    with pytest.raises(RateLimitException) as info:
        xero.accounting.get_organisations(xero.tenant_id)
    assert info.value.rate_limit == "day"
    assert xero.backend.limits.day_limit(other) == 5000
    assert xero.backend.call_stats(xero.tenant_id).refused == {"day": 1}


def test_reset_restores_the_limits_with_a_fresh_override_map(xero: Xero) -> None:
    limits = xero.backend.limits
    overrides = limits.tenant_per_day
    limits.minute_s, limits.day_s = 6.0, 60.0
    limits.tenant_per_day[xero.tenant_id] = 1000
    xero.backend.reset()
    assert (limits.minute_s, limits.day_s, limits.tenant_per_day) == (60.0, 86400.0, {})
    assert limits.tenant_per_day is not overrides  # a later change to the old map cannot leak in
    overrides["x"] = 1
    assert limits.tenant_per_day == {}


def test_peak_concurrency_and_refusals_by_problem(xero: Xero) -> None:
    xero.backend.faults.latency(0.6, path_prefix="/api.xro/2.0/Organisation")
    barrier = threading.Barrier(7)

    def call() -> None:
        barrier.wait()
        try:
            xero.accounting.get_organisations(xero.tenant_id)
        except RateLimitException:
            pass

    threads = [threading.Thread(target=call) for _ in range(7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = xero.backend.call_stats(xero.tenant_id)
    assert (stats.admitted, stats.peak_in_flight, stats.refused, stats.refused_total) == (5, 5, {"concurrent": 2}, 2)
    assert xero.backend.peak_concurrency(xero.tenant_id) == 5
    refusals = xero.backend.rate_limit_refusals(xero.tenant_id)
    assert [r.problem for r in refusals] == ["concurrent", "concurrent"]
    assert all(r.tenant_id == xero.tenant_id for r in refusals)
    # One at a time afterwards: the peak stays what it was, and a tenant never called has zeros.
    xero.backend.faults.clear()
    xero.accounting.get_organisations(xero.tenant_id)
    assert xero.backend.peak_concurrency(xero.tenant_id) == 5
    assert xero.backend.call_stats("never-called").admitted == 0
    xero.backend.reset()
    assert xero.backend.rate_limit_refusals() == [] and xero.backend.peak_concurrency(xero.tenant_id) == 0
