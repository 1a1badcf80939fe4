"""Xero's errors read as they are: bodies that are not JSON, which rate limit a 429 names, where a token
refresh happens. The real client against the sandbox over HTTP, with a real PostgreSQL pacer."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from astute_xero.export import contacts
from astute_xero.xero import client as xero_client
from astute_xero.xero.pacing import OrganisationLimits, Pacer, XeroLimits
from astute_xero.xero.client import DailyLimitReached, XeroCallError, XeroClient
from astute_xero.xero.tokens import TokenStore, XeroConnectionSettings, obtain_with_sdk
from devtools.xero_setup import SANDBOX_TIMEOUTS, authorise_app
from tests.astute_xero.conftest import TENANT

HTML_PAGE = (b"<!DOCTYPE html><html><head><title>400 Bad Request</title></head><body><h1>Bad Request</h1>"
             b"<p>Your browser sent a request that this server could not understand.</p></body></html>")


# --- (a) error bodies that are not JSON ----------------------------------------------------------

def test_a_400_with_an_html_body_is_an_ordinary_refusal_with_a_short_safe_error(pipeline):
    pipeline.xero.backend.faults.error_body_next(1, status=400, body=HTML_PAGE, path_prefix="/api.xro/2.0/Contacts",
                                                 method="PUT")
    with pytest.raises(XeroCallError) as raised:
        pipeline.client.create_contacts(TENANT, ["Harbour Constructions"], "astute-contacts-html")
    error = raised.value
    assert error.call.http_status == 400 and error.outcome_known, "Xero (or its proxy) refused it as a whole"
    assert error.call.error.startswith("HTTP 400") and len(error.call.error) < 200
    assert "<" not in error.call.error and "Bad Request</h1>" not in str(error), "never the raw page"


def test_a_non_json_error_leaves_its_api_log_row_with_the_status_and_no_raw_body(pipeline):
    pipeline.data.customer("Harbour Constructions")
    customer = pipeline.data.customer("Metro Health")
    pipeline.data.invoice(pipeline.entity, customer, number="H-1")
    pipeline.data.flush()
    run_id = pipeline.select()
    pipeline.db.execute("UPDATE xero_sync.run_document SET stage = 'ready' WHERE run_id = %s", (run_id,))
    pipeline.xero.backend.faults.error_body_next(1, status=400, body=HTML_PAGE, path_prefix="/api.xro/2.0/Contacts",
                                                 method="PUT")
    with pytest.raises((XeroCallError, contacts.ContactsUnfinished)):
        contacts.resolve_contacts(pipeline.db, pipeline.client, run_id)
    (status, error) = pipeline.db.execute(
        "SELECT http_status, error FROM xero_sync.api_log WHERE run_id = %s AND method = 'PUT' AND endpoint = 'Contacts'",
        (run_id,)).fetchone()
    assert status == 400 and error.startswith("HTTP 400") and "<" not in error and len(error) < 200


def test_a_404_with_a_text_body_reads_as_not_found(pipeline):
    unknown = "0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f"
    with pytest.raises(XeroCallError) as raised:
        pipeline.client.rename_contact(TENANT, unknown, "Nobody")
    assert raised.value.call.http_status == 404 and raised.value.call.error.startswith("HTTP 404")
    assert "cannot be found" not in raised.value.call.error, "a body that is not Xero's JSON is not repeated"


def test_a_502_page_from_a_proxy_on_a_read_is_retried(pipeline):
    pipeline.xero.backend.faults.error_body_next(2, status=502, body=b"<html>502 Bad Gateway</html>",
                                                 path_prefix="/api.xro/2.0/Contacts", method="GET")
    found, call = pipeline.client.contacts_named(TENANT, ["Nobody"])
    assert found == [] and call.http_status == 200


# --- (b) the 429's kind comes from X-Rate-Limit-Problem --------------------------------------------

def test_five_minute_limit_429s_in_a_row_are_not_a_spent_daily_limit(pipeline):
    pipeline.xero.backend.faults.rate_limit_next(5, problem="minute", retry_after=0)
    with pytest.raises(XeroCallError) as raised:
        pipeline.client.contacts_named(TENANT, ["Nobody"])
    error = raised.value
    assert not isinstance(error, DailyLimitReached)
    assert isinstance(error, xero_client.MinuteLimitPersisted) and error.outcome_known
    assert "per-minute limit" in str(error) and "persisted" in str(error) and "is spent" not in str(error)
    assert error.call.http_status == 429
    assert sum(1 for r in pipeline.xero.backend.requests if r.status == 429) == 5


def test_a_long_retry_after_on_a_minute_limit_is_not_a_daily_limit_and_is_not_slept_on(pipeline):
    pipeline.xero.backend.faults.rate_limit_next(1, problem="minute", retry_after=3600)
    started = time.monotonic()
    with pytest.raises(XeroCallError) as raised:
        pipeline.client.contacts_named(TENANT, ["Nobody"])
    assert time.monotonic() - started < 10
    assert isinstance(raised.value, xero_client.MinuteLimitPersisted) and not isinstance(raised.value, DailyLimitReached)


@pytest.mark.parametrize("problem", ["day", "Day", "DAY"])
def test_only_a_day_problem_is_a_spent_daily_limit_whatever_its_case(pipeline, problem):
    pipeline.xero.backend.faults.rate_limit_next(1, problem=problem, retry_after=40_000)
    started = time.monotonic()
    with pytest.raises(DailyLimitReached) as raised:
        pipeline.client.contacts_named(TENANT, ["Nobody"])
    assert time.monotonic() - started < 5, "never slept on"
    assert "daily API limit" in str(raised.value) and raised.value.outcome_known


def test_one_minute_limit_429_is_waited_out_and_retried(pipeline):
    pipeline.xero.backend.faults.rate_limit_next(1, problem="minute", retry_after=1)
    found, call = pipeline.client.contacts_named(TENANT, ["Nobody"])
    assert call.http_status == 200


# --- (d) a token refresh never holds one of the organisation's concurrency slots ----------------

def test_a_slow_token_refresh_holds_no_concurrency_slot(db, xero, database_url):
    """Two apps call one organisation through a pacer that allows one call in flight. App A's token
    has expired and its refresh is slow; app B's call must not wait for A's refresh."""
    from astute_xero.operations.migrations import apply_migrations

    apply_migrations(db)
    backend = xero.backend
    backend.add_tenant("Org", tenant_id=TENANT)

    def connect() -> psycopg.Connection:
        return psycopg.connect(database_url, autocommit=True)

    def client_for(connection_id: str) -> XeroClient:
        app = authorise_app(backend, [TENANT])
        settings = XeroConnectionSettings(connection_id, app.client_id, app.client_secret, app.refresh_token,
                                          api_url=xero.url, identity_url=xero.url)
        return XeroClient(settings, TokenStore(connect, settings, obtain_with_sdk), Pacer(connect, limits=XeroLimits(OrganisationLimits(concurrent=1))),
                          **SANDBOX_TIMEOUTS)

    slow = client_for("xero_a")
    backend.faults.expire_access_tokens()  # A's token is refused from now on: its next call refreshes
    quick = client_for("xero_b")  # B's token is issued after: valid
    backend.faults.latency(3.0, path_prefix="/connect/token")
    outcome: dict[str, object] = {}

    def call_slowly() -> None:
        try:
            outcome["a"] = slow.contacts_named(TENANT, ["Nobody"])[1].http_status
        except Exception as error:  # noqa: BLE001 - reported below
            outcome["a"] = error

    thread = threading.Thread(target=call_slowly)
    thread.start()
    try:
        time.sleep(0.8)  # A got its 401 and is refreshing (3 s)
        started = time.monotonic()
        _, call = quick.contacts_named(TENANT, ["Nobody"])
        waited = time.monotonic() - started
    finally:
        thread.join(30)
        backend.faults.latency(0, path_prefix="/connect/token")
        slow.close()
        quick.close()
    assert call.http_status == 200
    assert outcome["a"] == 200, outcome
    assert waited < 1.5, f"B waited {waited:.1f} s for the slot A held while refreshing its token"
