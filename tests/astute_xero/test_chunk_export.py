"""The chunk protocol under faults: whatever happens to a call, a retry never duplicates or loses."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from decimal import Decimal

import pytest

from astute_xero import leases
from astute_xero.export.chunk_export import ChunkOutcomeUnknown, export_chunk
from devtools.astute_data import Line
from tests.astute_xero.conftest import TENANT


def invoices(pipeline, numbered: int, unnumbered: int, identical: int = 0) -> list[int]:
    customer = pipeline.data.customer("Harbour Constructions")
    ids = [pipeline.data.invoice(pipeline.entity, customer, number=f"N-{n}",
                                 lines=[Line(unit_amount=Decimal("10") + n)]) for n in range(numbered)]
    ids += [pipeline.data.invoice(pipeline.entity, customer, number=None, invoice_date=dt.date(2026, 6, 1 + n),
                                  lines=[Line(unit_amount=Decimal("20") + n)]) for n in range(unnumbered)]
    # Same customer, same day, same lines, no number: only the count can tell them apart.
    ids += [pipeline.data.invoice(pipeline.entity, customer, number=None, invoice_date=dt.date(2026, 7, 1))
            for _ in range(identical)]
    pipeline.data.flush()
    return ids


def in_xero(pipeline) -> list[dict]:
    return pipeline.xero.backend.invoices(TENANT)


def assert_exactly_once(pipeline, ids: list[int]) -> None:
    assert pipeline.status() == {i: "exported" for i in ids}
    xero_ids = [row[0] for row in pipeline.db.execute("SELECT xero_invoice_id::text FROM xero_sync.invoice_export")]
    assert len(set(xero_ids)) == len(ids), "every Astute invoice is linked to its own Xero invoice"
    assert sorted(x["InvoiceID"] for x in in_xero(pipeline)) == sorted(xero_ids), "and Xero has no others"


@pytest.mark.parametrize("identical", [0, 3])
def test_a_lost_answer_is_reconciled_not_resent_numbered_or_not(pipeline, identical):
    ids = invoices(pipeline, numbered=4, unnumbered=3, identical=identical)
    (key,) = pipeline.plan()
    pipeline.xero.backend.faults.drop_after_commit_next(1)
    with pytest.raises(ChunkOutcomeUnknown):
        export_chunk(pipeline.db, pipeline.client, key)
    assert set(pipeline.status().values()) == {"sending"}
    assert len(in_xero(pipeline)) == len(ids), "Xero did create them"

    pipeline.xero.backend.advance(3600)  # long after Xero forgot the Idempotency-Key
    result = export_chunk(pipeline.db, pipeline.client, key)
    assert result.reconciled == len(ids) and result.exported == 0
    assert pipeline.puts() == 1
    assert_exactly_once(pipeline, ids)


def test_a_503_before_xero_acted_is_sent_again_once(pipeline):
    ids = invoices(pipeline, numbered=2, unnumbered=2)
    (key,) = pipeline.plan()
    pipeline.xero.backend.faults.fail_next(1, status=503)
    with pytest.raises(ChunkOutcomeUnknown):
        export_chunk(pipeline.db, pipeline.client, key)
    assert in_xero(pipeline) == []
    result = export_chunk(pipeline.db, pipeline.client, key)
    assert result.exported == 4 and result.reconciled == 0
    assert_exactly_once(pipeline, ids)


def test_a_retry_after_success_sends_nothing(pipeline):
    ids = invoices(pipeline, numbered=2, unnumbered=1)
    (key,) = pipeline.plan()
    export_chunk(pipeline.db, pipeline.client, key)
    again = export_chunk(pipeline.db, pipeline.client, key)
    assert (again.exported, again.skipped) == (0, 3)
    assert pipeline.puts() == 1
    assert_exactly_once(pipeline, ids)


def test_an_unnumbered_invoice_never_matches_one_exported_before(pipeline):
    first = invoices(pipeline, numbered=0, unnumbered=0, identical=1)
    (key,) = pipeline.plan()
    export_chunk(pipeline.db, pipeline.client, key)
    # An identical twin raised later, whose first attempt dies after Xero created it.
    customer = pipeline.db.execute("SELECT customer_id FROM astute.invoice WHERE id = %s", (first[0],)).fetchone()[0]
    twin = pipeline.data.invoice(pipeline.entity, customer, number=None, invoice_date=dt.date(2026, 7, 1))
    pipeline.data.flush()
    (key,) = pipeline.plan()
    pipeline.xero.backend.faults.drop_after_commit_next(1)
    with pytest.raises(ChunkOutcomeUnknown):
        export_chunk(pipeline.db, pipeline.client, key)
    export_chunk(pipeline.db, pipeline.client, key)
    assert_exactly_once(pipeline, first + [twin])
    assert Counter(x["Status"] for x in in_xero(pipeline)) == {"AUTHORISED": 2}


def test_a_contact_merged_away_in_xero_is_followed_and_an_archived_one_holds_its_invoices(pipeline):
    merged_customer = pipeline.data.customer("Old Name Pty Ltd")
    archived_customer = pipeline.data.customer("Gone Away Ltd")
    merged_invoice = pipeline.data.invoice(pipeline.entity, merged_customer, number="M-1")
    archived_invoice = pipeline.data.invoice(pipeline.entity, archived_customer, number="A-1")
    pipeline.data.flush()
    backend = pipeline.xero.backend
    # Linked earlier; since then, in Xero, the old Contact was merged into a new one and another archived.
    survivor = backend.add_contact(TENANT, "New Name Pty Ltd")
    old = backend.add_contact(TENANT, "Old Name Pty Ltd", status="ARCHIVED", merged_to_contact_id=survivor)
    gone = backend.add_contact(TENANT, "Gone Away Ltd", status="ARCHIVED")
    for customer, contact, name in ((merged_customer, old, "Old Name Pty Ltd"), (archived_customer, gone, "Gone Away Ltd")):
        pipeline.db.execute("INSERT INTO xero_sync.contact_link VALUES (%s, %s, %s, %s)", (customer, TENANT, contact, name))

    keys = pipeline.plan()
    for key in keys:
        export_chunk(pipeline.db, pipeline.client, key)
    assert pipeline.status() == {merged_invoice: "exported"}
    (contact_id,) = pipeline.db.execute(
        "SELECT xero_contact_id::text FROM xero_sync.contact_link WHERE customer_id = %s", (merged_customer,)).fetchone()
    assert contact_id == survivor
    assert in_xero(pipeline)[0]["Contact"]["ContactID"] == survivor
    (reason,) = pipeline.db.execute("SELECT message FROM xero_sync.validation_issue WHERE document_id = %s",
                                    (archived_invoice,)).fetchone()
    assert "'Gone Away Ltd'" in reason and "archived" in reason


def test_a_daily_limit_stops_the_organisation_without_sleeping_and_releases_the_claims(pipeline):
    ids = invoices(pipeline, numbered=3, unnumbered=0)
    (key,) = pipeline.plan()
    pipeline.xero.backend.faults.rate_limit_next(1, problem="day", retry_after=40_000, method="PUT")
    started = dt.datetime.now()
    result = export_chunk(pipeline.db, pipeline.client, key)
    assert result.stopped and (dt.datetime.now() - started).total_seconds() < 5
    assert pipeline.status() == {}, "nothing was sent: no invoice is left claimed"
    (decision, detail) = pipeline.db.execute("SELECT decision, detail FROM xero_sync.run_entity").fetchone()
    assert decision == "stopped" and "daily API limit" in detail and "next run" in detail
    assert in_xero(pipeline) == []
    # Until Xero's day returns (its Retry-After), every worker knows: the next run calls Xero for nothing.
    calls = len(pipeline.xero.backend.requests)
    assert pipeline.plan() == []
    assert len(pipeline.xero.backend.requests) == calls
    (decision, detail) = pipeline.db.execute(
        "SELECT decision, detail FROM xero_sync.run_entity WHERE run_id = %s", (pipeline.run_id,)).fetchone()
    assert decision == "stopped" and "calls of the day" in detail
    # The day returns: the next run sends them.
    pipeline.day_returns()
    (key,) = pipeline.plan()
    export_chunk(pipeline.db, pipeline.client, key)
    assert_exactly_once(pipeline, ids)


def test_the_sdk_never_retries_behind_our_back(xero):
    """A 429 with Retry-After reaches us at once: urllib3's hidden retries are off."""
    from xero_python.accounting import AccountingApi
    from xero_python.api_client import ApiClient, Configuration
    from xero_python.api_client.oauth2 import OAuth2Token
    from xero_python.exceptions import RateLimitException

    from astute_xero.xero.client import harden

    tenant = xero.backend.add_tenant("Org")
    xero.backend.faults.rate_limit_next(1, problem="minute", retry_after=30)
    token = {"access_token": "t", "scope": [], "expires_in": None, "token_type": "Bearer", "expires_at": None}
    configuration = Configuration(oauth2_token=OAuth2Token())
    configuration.oauth2_token = OAuth2Token()
    client = harden(ApiClient(configuration, oauth2_token_getter=lambda: token, oauth2_token_saver=lambda t: None))
    api = AccountingApi(client, base_url=xero.url + "/api.xro/2.0")
    started = dt.datetime.now()
    with pytest.raises(RateLimitException):
        api.get_accounts(tenant, _request_timeout=(5, 5))
    assert (dt.datetime.now() - started).total_seconds() < 5
    assert len(xero.backend.requests) == 1


def test_a_customer_renamed_in_astute_renames_its_contact_or_is_held_when_the_name_is_taken(pipeline):
    backend = pipeline.xero.backend
    renamed = pipeline.data.customer("Coastal Freight")
    blocked = pipeline.data.customer("Metro Health")
    first = pipeline.data.invoice(pipeline.entity, renamed, number="R-1")
    second = pipeline.data.invoice(pipeline.entity, blocked, number="B-1")
    pipeline.data.flush()
    for key in pipeline.plan():
        export_chunk(pipeline.db, pipeline.client, key)
    contacts = {c["Name"]: c["ContactID"] for c in backend.contacts(TENANT)}
    backend.add_contact(TENANT, "Metro Health Services")  # somebody else already has the new name
    pipeline.db.execute("UPDATE astute.customer SET name = 'Coastal Freight & Logistics' WHERE id = %s", (renamed,))
    pipeline.db.execute("UPDATE astute.customer SET name = 'Metro Health Services' WHERE id = %s", (blocked,))
    again = [pipeline.data.invoice(pipeline.entity, renamed, number="R-2"),
             pipeline.data.invoice(pipeline.entity, blocked, number="B-2")]
    pipeline.data.flush()

    for key in pipeline.plan():
        export_chunk(pipeline.db, pipeline.client, key)
    by_id = {c["ContactID"]: c["Name"] for c in backend.contacts(TENANT)}
    assert by_id[contacts["Coastal Freight"]] == "Coastal Freight & Logistics", "renamed by ContactID"
    assert by_id[contacts["Metro Health"]] == "Metro Health", "the taken name was refused"
    status = pipeline.status()
    assert (status[first], status[second], status[again[0]]) == ("exported", "exported", "exported")
    assert again[1] not in status
    (reason,) = pipeline.db.execute("SELECT message FROM xero_sync.validation_issue WHERE document_id = %s",
                                    (again[1],)).fetchone()
    assert "'Metro Health Services'" in reason and "already assigned to another contact" in reason


def test_an_invoice_in_flight_in_another_live_worker_is_left_to_it(pipeline, database_url):
    """Two runs (a backfill beside the schedule) holding the same invoice: only one sends it."""
    import psycopg

    ids = invoices(pipeline, numbered=3, unnumbered=1)
    (first,) = pipeline.plan()
    (second,) = pipeline.plan()  # another run's work list holds the same invoices
    ttl = dt.timedelta(seconds=1)
    with psycopg.connect(database_url, autocommit=True) as other_worker:
        other = leases.new_holder()
        assert leases.acquire(other_worker, other, [f"invoice:{ids[0]}"], ttl)  # busy sending it right now
        with leases.Heartbeat(other_worker, other, [f"invoice:{ids[0]}"], ttl):  # and alive: it renews its lease
            result = export_chunk(pipeline.db, pipeline.client, second, lease_ttl=ttl)
    assert (result.exported, result.skipped) == (3, 1)
    assert ids[0] not in pipeline.status()
    again = export_chunk(pipeline.db, pipeline.client, first)
    assert (again.exported, again.skipped) == (1, 3), "the first run sends only what is left"
    assert_exactly_once(pipeline, ids)


def test_an_organisation_that_refuses_access_is_stopped_with_a_reason_and_nothing_is_claimed(pipeline):
    ids = invoices(pipeline, numbered=2, unnumbered=0)
    (key,) = pipeline.plan()
    pipeline.xero.backend.faults.fail_next(1, status=403)
    result = export_chunk(pipeline.db, pipeline.client, key)
    assert result.stopped and pipeline.status() == {}
    (detail,) = pipeline.db.execute("SELECT detail FROM xero_sync.run_entity").fetchone()
    assert "no longer connected" in detail and "Re-connect" in detail
    (key,) = pipeline.plan()
    export_chunk(pipeline.db, pipeline.client, key)
    assert_exactly_once(pipeline, ids)


# --- exactly once against the clock (issue 19) ------------------------------------------------------


def slow_client(pipeline, database_url, **client_options):
    """A client of the same app with Xero's timing shrunk: it gives up on an answer after 2 s and counts on a
    late commit landing within 2 s after that."""
    from tests.astute_xero.conftest import sandbox_client

    return sandbox_client(pipeline.xero, pipeline.app, database_url,
                          client_options={"read_timeout_s": 2, "late_commit_margin_s": 2, **client_options})


def fill_the_minute(pipeline, seconds_left: int) -> None:
    """Every call of the organisation's current minute is used; the next comes in about `seconds_left` s."""
    pipeline.db.execute(
        "UPDATE xero_sync.rate_budget SET calls = 60, window_started_at = now() - make_interval(secs => 61 - %s) "
        "WHERE tenant_id = %s", (seconds_left, TENANT))


def test_the_late_commit_window_starts_when_the_request_leaves_not_before_the_wait_for_the_budget(
        pipeline, database_url):
    """A PUT that waited 5 s for its minute, then timed out while Xero committed it late: the next attempt over
    the same documents (a backfill beside the daily run) must wait for that commit from the moment the request
    left, find the invoices and adopt them, not send them again."""
    ids = invoices(pipeline, numbered=0, unnumbered=3)
    (key,) = pipeline.plan()
    client = slow_client(pipeline, database_url)
    fill_the_minute(pipeline, seconds_left=5)
    pipeline.xero.backend.faults.commit_late_next(3.0)  # Xero acts 3 s after the request arrives; we wait 2
    with pytest.raises(ChunkOutcomeUnknown):
        export_chunk(pipeline.db, client, key)
    assert in_xero(pipeline) == [], "not committed yet when the client gave up"
    ids += invoices(pipeline, numbered=0, unnumbered=1)  # a new run: its chunk holds one invoice more
    (again,) = pipeline.plan()
    result = export_chunk(pipeline.db, client, again)
    client.close()
    assert (result.reconciled, result.exported) == (3, 1)
    assert_exactly_once(pipeline, ids)


def test_the_late_commit_wait_is_measured_on_the_databases_clock_not_the_workers(pipeline, database_url):
    """The database that stamps when a call left runs 10 minutes behind the worker: the worker must not think the
    window long past and look before Xero's late commit has landed."""
    ids = invoices(pipeline, numbered=0, unnumbered=2)
    (key,) = pipeline.plan()
    # The database's clock, as every statement of this connection sees it, 10 minutes behind the worker's.
    pipeline.db.execute("CREATE SCHEMA skewed_clock")
    pipeline.db.execute("CREATE FUNCTION skewed_clock.now() RETURNS timestamptz LANGUAGE sql STABLE "
                        "AS $$ SELECT pg_catalog.now() - interval '10 minutes' $$")
    pipeline.db.execute("SET search_path = skewed_clock, pg_catalog, public")
    client = slow_client(pipeline, database_url)
    pipeline.xero.backend.faults.commit_late_next(3.0)
    with pytest.raises(ChunkOutcomeUnknown):
        export_chunk(pipeline.db, client, key)
    ids += invoices(pipeline, numbered=0, unnumbered=1)
    (again,) = pipeline.plan()
    result = export_chunk(pipeline.db, client, again)
    client.close()
    assert (result.reconciled, result.exported) == (2, 1)
    assert_exactly_once(pipeline, ids)


def test_outcomes_are_recorded_with_their_call_even_when_the_look_up_after_it_fails(pipeline):
    """A chunk partly refused for a taken number, and the organisation disconnects the app right after: what Xero
    created is recorded as exported with the call's api_log row, never left 'sending'."""
    ids = invoices(pipeline, numbered=4, unnumbered=0)
    (key,) = pipeline.plan()
    contact = pipeline.xero.backend.contacts(TENANT)[0]["ContactID"]
    pipeline.xero.backend.seed_invoice(TENANT, contact, "N-2")  # keyed in by hand: its number is taken
    pipeline.xero.backend.faults.fail_next(1, status=403, path_prefix="/api.xro/2.0/Invoices", method="GET")
    result = export_chunk(pipeline.db, pipeline.client, key)
    status = pipeline.status()
    taken = ids[2]
    assert {i: s for i, s in status.items() if i != taken} == {i: "exported" for i in ids if i != taken}
    assert status[taken] == "failed"
    (error,) = pipeline.db.execute("SELECT last_error FROM xero_sync.invoice_export WHERE invoice_id = %s",
                                   (taken,)).fetchone()
    assert "must be unique" in error
    assert (result.exported, result.failed) == (3, 1)
    (detail,) = pipeline.db.execute("SELECT detail FROM xero_sync.run_entity").fetchone()
    assert "no longer connected" in detail, "the organisation is stopped for the run, with the reason"
    (logged,) = pipeline.db.execute(
        "SELECT count(*) FROM xero_sync.api_log WHERE method = 'PUT' AND endpoint = 'Invoices' AND outcome IS NOT NULL"
    ).fetchone()
    assert logged == 1


def _worker_host() -> None:
    """A worker on another host, in a process of its own: exports the chunk described in WORKER_CHUNK."""
    import json
    import os

    import psycopg

    from astute_xero.export.chunk_export import ChunkKey
    from devtools.xero_setup import XeroApp
    from tests.astute_xero.conftest import sandbox_client

    job = json.loads(os.environ["WORKER_CHUNK"])
    sandbox = type("Sandbox", (), {"url": job["sandbox_url"]})()
    client = sandbox_client(sandbox, XeroApp(**job["app"]), job["database_url"],
                            client_options={"read_timeout_s": 2, "late_commit_margin_s": 2})
    with psycopg.connect(job["database_url"], autocommit=True) as conn:
        export_chunk(conn, client, ChunkKey(**job["key"]), lease_ttl=dt.timedelta(seconds=job["lease_ttl_s"]))


def test_a_chunk_whose_worker_host_died_mid_call_is_taken_over_once_its_leases_expire(pipeline, database_url):
    """The worker's host dies while its PUT is at Xero: no heartbeat and no FIN, its database connections stay
    open (until TCP keepalive, hours). Its leases expire; the retry takes the documents over, waits out the
    call's late-commit window, finds what Xero created and adopts it: none skipped, none sent twice."""
    import dataclasses
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    ids = invoices(pipeline, numbered=2, unnumbered=1)
    (key,) = pipeline.plan()
    pipeline.xero.backend.faults.hang_after_commit_next(60)  # Xero acts; its answer is on the way when the host dies
    job = {"sandbox_url": pipeline.xero.url, "database_url": database_url, "key": dataclasses.asdict(key),
           "lease_ttl_s": 2, "app": dataclasses.asdict(pipeline.app)}
    worker = subprocess.Popen(
        [sys.executable, "-c", "from tests.astute_xero.test_chunk_export import _worker_host; _worker_host()"],
        env={**os.environ, "WORKER_CHUNK": json.dumps(job)})
    try:
        deadline = time.monotonic() + 60
        while len(in_xero(pipeline)) < len(ids):  # the PUT has reached Xero, which created them
            assert worker.poll() is None and time.monotonic() < deadline, "the worker never sent its PUT"
            time.sleep(0.05)
        os.kill(worker.pid, signal.SIGSTOP)  # the host is gone
        assert set(pipeline.status().values()) == {"sending"}
        client = slow_client(pipeline, database_url)
        result = export_chunk(pipeline.db, client, key, lease_ttl=dt.timedelta(seconds=2))
        client.close()
    finally:
        worker.kill()
        worker.wait()
    assert (result.reconciled, result.exported, result.skipped) == (3, 0, 0)
    assert_exactly_once(pipeline, ids)


def test_a_call_that_could_not_be_over_before_the_tasks_timeout_is_not_sent(pipeline, database_url):
    """Airflow kills a chunk task at its execution_timeout: a PUT must never leave when its waits and its own
    timeouts could run past that, or the kill lands mid-call. It is refused before it is sent, the claims are
    put back, and the retry sends them."""
    from astute_xero.xero.client import XeroCallError

    ids = invoices(pipeline, numbered=2, unnumbered=0)
    (key,) = pipeline.plan()
    client = slow_client(pipeline, database_url)  # a call lasts at most 12 s (10 s connect, 2 s read)
    fill_the_minute(pipeline, seconds_left=20)
    client.finish_within(client.call_bound.total_seconds() + 3)  # 3 s to wait: not the 20 s the minute needs
    started = time.monotonic()
    with pytest.raises(XeroCallError, match="time this task has left") as caught:
        export_chunk(pipeline.db, client, key)
    client.close()
    assert caught.value.outcome_known
    assert time.monotonic() - started < 3, "said at once, not after waiting"
    assert pipeline.puts() == 0 and pipeline.status() == {}, "nothing sent, nothing left claimed"
    pipeline.db.execute("UPDATE xero_sync.rate_budget SET calls = 0")
    export_chunk(pipeline.db, pipeline.client, key)
    assert_exactly_once(pipeline, ids)
