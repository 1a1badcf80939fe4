"""Reconciliation on real Xero's terms: what Xero fills in, rewrites, or holds besides our documents.

Each test reproduces a path by which the export could send a document twice, or record one that
Xero does not hold, against the sandbox over HTTP behaving as Xero does.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pytest

from astute_xero.export.chunk_export import ChunkOutcomeUnknown, export_chunk
from astute_xero.xero.client import XeroClient
from devtools.astute_data import Line
from tests.astute_xero.conftest import TENANT
from tests.astute_xero.test_chunk_export import assert_exactly_once, in_xero


def unnumbered(pipeline, count: int, *, tax_type: str | None = "OUTPUT", customer: str = "Harbour Constructions") -> list[int]:
    customer_id = pipeline.data.customer(customer)
    ids = [pipeline.data.invoice(pipeline.entity, customer_id, number=None, invoice_date=dt.date(2026, 6, 1 + n),
                                 lines=[Line(unit_amount=Decimal("20") + n, tax_type=tax_type)]) for n in range(count)]
    pipeline.data.flush()
    return ids


def shift_attempts_back(pipeline, hours: int) -> None:
    """As if the attempts so far had happened `hours` ago (the sandbox recorded them then, too)."""
    for table in ("invoice_export", "credit_note_export"):
        pipeline.db.execute(
            f"UPDATE xero_sync.{table} SET updated_at = updated_at - make_interval(hours => %(h)s), "
            "first_claimed_at = first_claimed_at - make_interval(hours => %(h)s), "
            "last_sent_at = last_sent_at - make_interval(hours => %(h)s)", {"h": hours})


def test_finding_1_unnumbered_invoices_without_tax_type_are_recognised_after_xero_fills_it_in(pipeline):
    ids = unnumbered(pipeline, 3, tax_type=None)
    (key,) = pipeline.plan()
    pipeline.xero.backend.faults.drop_after_commit_next(1)
    with pytest.raises(ChunkOutcomeUnknown):
        export_chunk(pipeline.db, pipeline.client, key)
    assert {line["TaxType"] for x in in_xero(pipeline) for line in x["LineItems"]} == {"OUTPUT"}, \
        "Xero filled in the account's default tax type"
    pipeline.xero.backend.advance(3600)  # long after Xero forgot the Idempotency-Key
    result = export_chunk(pipeline.db, pipeline.client, key)
    assert (result.reconciled, result.exported) == (3, 0)
    assert_exactly_once(pipeline, ids)


def test_finding_1_credit_notes_without_tax_type_too(pipeline):
    customer = pipeline.data.customer("Harbour Constructions")
    ids = [pipeline.data.credit_note(pipeline.entity, customer, number=None, credit_date=dt.date(2026, 6, 1 + n),
                                     lines=[Line(quantity=Decimal("1"), unit_amount=Decimal("5") + n, tax_type=None)])
           for n in range(2)]
    pipeline.data.flush()
    (key,) = pipeline.plan()
    pipeline.xero.backend.faults.drop_after_commit_next(1, path_prefix="/api.xro/2.0/CreditNotes")
    with pytest.raises(ChunkOutcomeUnknown):
        export_chunk(pipeline.db, pipeline.client, key)
    pipeline.xero.backend.advance(3600)
    result = export_chunk(pipeline.db, pipeline.client, key)
    assert (result.reconciled, result.exported) == (2, 0)
    assert len(pipeline.xero.backend.credit_notes(TENANT)) == 2
    assert {row[0] for row in pipeline.db.execute("SELECT status FROM xero_sync.credit_note_export")} == {"exported"}
    assert len(ids) == 2


def test_finding_2_the_window_starts_at_the_first_claim_whatever_happened_since(pipeline):
    ids = unnumbered(pipeline, 2)
    (key,) = pipeline.plan()
    backend = pipeline.xero.backend
    backend.advance(-3 * 3600)  # the first attempt happened three hours ago ...
    backend.faults.drop_after_commit_next(1)
    with pytest.raises(ChunkOutcomeUnknown):
        export_chunk(pipeline.db, pipeline.client, key)
    backend.advance(3 * 3600)
    shift_attempts_back(pipeline, 3)  # ... for us too
    # A later attempt fails before it can look (Xero's daily limit on the lookup): its claim is recent.
    backend.faults.rate_limit_next(1, problem="day", retry_after=3600, method="GET")
    assert export_chunk(pipeline.db, pipeline.client, key).stopped
    pipeline.day_returns()  # Xero's Retry-After has passed
    (key,) = pipeline.plan()  # the next run
    result = export_chunk(pipeline.db, pipeline.client, key)
    assert (result.reconciled, result.exported) == (2, 0)
    assert_exactly_once(pipeline, ids)


def test_finding_3_a_commit_that_lands_after_our_timeout_is_waited_for_then_found(pipeline):
    customer = pipeline.data.customer("Harbour Constructions")
    ids = [pipeline.data.invoice(pipeline.entity, customer, number=f"LATE-{n}") for n in range(3)]
    ids += unnumbered(pipeline, 2, customer="Other Customer")
    (key,) = pipeline.plan()
    client = XeroClient(pipeline.client._settings, pipeline.client._tokens, pipeline.client._pacer,
                        read_timeout_s=1, late_commit_margin_s=2)
    backend = pipeline.xero.backend
    backend.faults.commit_late_next(2.5)  # Xero commits after our client has given up
    with pytest.raises(ChunkOutcomeUnknown):
        export_chunk(pipeline.db, client, key)
    assert in_xero(pipeline) == [], "nothing had landed when the client gave up"
    started = time.monotonic()
    result = export_chunk(pipeline.db, client, key)  # at once: it waits until the first call cannot land
    assert time.monotonic() - started > 1.5
    assert (result.exported, result.reconciled) == (0, len(ids))
    assert_exactly_once(pipeline, ids)


def test_finding_3_a_failed_invoice_that_xero_holds_is_found_before_it_is_sent_again(pipeline):
    customer = pipeline.data.customer("Harbour Constructions")
    ids = [pipeline.data.invoice(pipeline.entity, customer, number=f"F-{n}") for n in range(2)]
    ids += unnumbered(pipeline, 1)
    (key,) = pipeline.plan()
    pipeline.xero.backend.faults.drop_after_commit_next(1)
    with pytest.raises(ChunkOutcomeUnknown):
        export_chunk(pipeline.db, pipeline.client, key)
    # What an earlier version recorded when the retry's answer was "Invoice # must be unique.".
    pipeline.db.execute("UPDATE xero_sync.invoice_export SET status = 'failed', last_error = 'Xero: Invoice # must be unique.'")
    pipeline.xero.backend.advance(3600)
    (key,) = pipeline.plan()
    result = export_chunk(pipeline.db, pipeline.client, key)
    assert (result.reconciled, result.exported, result.failed) == (3, 0, 0)
    assert pipeline.plan() == [], "found, so nothing is left for the next run"
    assert_exactly_once(pipeline, ids)


def test_finding_4_a_supplier_bill_with_the_same_number_is_never_adopted(pipeline):
    backend = pipeline.xero.backend
    supplier = backend.add_contact(TENANT, "Scaffold Supplies")
    bill = backend.seed_bill(TENANT, supplier, "INV-7")
    customer = pipeline.data.customer("Harbour Constructions")
    invoice = pipeline.data.invoice(pipeline.entity, customer, number="INV-7")
    pipeline.data.flush()
    (key,) = pipeline.plan()
    backend.faults.fail_next(1, status=503)  # the first attempt's outcome is unknown: the retry looks
    with pytest.raises(ChunkOutcomeUnknown):
        export_chunk(pipeline.db, pipeline.client, key)
    export_chunk(pipeline.db, pipeline.client, key)
    (xero_id,) = pipeline.db.execute("SELECT xero_invoice_id::text FROM xero_sync.invoice_export").fetchone()
    assert xero_id != bill
    sales = [x for x in in_xero(pipeline) if x["Type"] == "ACCREC"]
    assert [(x["InvoiceID"], x["InvoiceNumber"]) for x in sales] == [(xero_id, "INV-7")]
    assert pipeline.status() == {invoice: "exported"}


def test_finding_4_an_invoice_keyed_in_by_hand_with_our_number_is_named_not_adopted(pipeline):
    backend = pipeline.xero.backend
    customer = pipeline.data.customer("Harbour Constructions")
    invoice = pipeline.data.invoice(pipeline.entity, customer, number="HAND-1")
    pipeline.data.flush()
    (key,) = pipeline.plan()
    contact = next(c["ContactID"] for c in backend.contacts(TENANT) if c["Name"] == "Harbour Constructions")
    backend.seed_invoice(TENANT, contact, "HAND-1", amount="99.00")  # someone keyed it in Xero meanwhile
    backend.faults.fail_next(1, status=503)
    with pytest.raises(ChunkOutcomeUnknown):
        export_chunk(pipeline.db, pipeline.client, key)
    result = export_chunk(pipeline.db, pipeline.client, key)
    assert (result.exported, result.failed, result.reconciled) == (0, 1, 0)
    (status, xero_id, error) = pipeline.db.execute(
        "SELECT status, xero_invoice_id, last_error FROM xero_sync.invoice_export WHERE invoice_id = %s", (invoice,)
    ).fetchone()
    assert (status, xero_id) == ("failed", None)
    assert "sales invoice HAND-1 for 'Harbour Constructions', 108.90 AUD" in error and "did not send it" in error
    assert len(in_xero(pipeline)) == 1


def test_a_number_xero_says_is_taken_is_explained_with_what_xero_holds(pipeline):
    backend = pipeline.xero.backend
    customer = pipeline.data.customer("Harbour Constructions")
    taken = pipeline.data.invoice(pipeline.entity, customer, number="DUP-1")
    fine = pipeline.data.invoice(pipeline.entity, customer, number="DUP-2")
    pipeline.data.flush()
    (key,) = pipeline.plan()
    contact = next(c["ContactID"] for c in backend.contacts(TENANT) if c["Name"] == "Harbour Constructions")
    backend.seed_invoice(TENANT, contact, "DUP-1", amount="12.00")
    result = export_chunk(pipeline.db, pipeline.client, key)
    assert (result.exported, result.failed) == (1, 1)
    (error,) = pipeline.db.execute("SELECT last_error FROM xero_sync.invoice_export WHERE invoice_id = %s",
                                   (taken,)).fetchone()
    assert "Xero already holds a sales invoice DUP-1" in error and "13.20 AUD" in error
    assert pipeline.status()[fine] == "exported"


def test_finding_5_a_document_the_sdk_refuses_is_held_and_its_neighbours_go(pipeline):
    customer = pipeline.data.customer("Harbour Constructions")
    ids = [pipeline.data.invoice(pipeline.entity, customer, number=f"OK-{n}") for n in range(99)]
    bad = pipeline.data.invoice(pipeline.entity, customer, number="9" * 300)
    pipeline.data.flush()
    (key,) = pipeline.plan()
    result = export_chunk(pipeline.db, pipeline.client, key)
    assert (result.exported, result.held) == (99, 1)
    assert bad not in pipeline.status(), "never claimed, so never left 'sending'"
    (rule, message) = pipeline.db.execute(
        "SELECT rule, message FROM xero_sync.validation_issue WHERE document_id = %s", (bad,)).fetchone()
    assert rule == "payload_refused" and "255" in message and "Correct it in Astute" in message
    assert_exactly_once(pipeline, ids)


def test_invoices_carry_their_astute_link_as_xero_url(pipeline, monkeypatch):
    monkeypatch.setenv("ASTUTE_INVOICE_URL", "https://acme.astute.example/invoices/{invoice_id}")
    ids = unnumbered(pipeline, 1)
    (key,) = pipeline.plan()
    export_chunk(pipeline.db, pipeline.client, key)
    (x,) = in_xero(pipeline)
    assert x["Url"] == f"https://acme.astute.example/invoices/{ids[0]}"
    (stored,) = pipeline.db.execute("SELECT source_url FROM xero_sync.invoice_export").fetchone()
    assert stored == x["Url"]


def test_an_organisation_disconnected_before_the_retry_looks_is_stopped_not_failed(pipeline):
    customer = pipeline.data.customer("Harbour Constructions")
    ids = [pipeline.data.invoice(pipeline.entity, customer, number=f"D-{n}") for n in range(2)]
    pipeline.data.flush()
    (key,) = pipeline.plan()
    backend = pipeline.xero.backend
    backend.faults.fail_next(1, status=503)
    with pytest.raises(ChunkOutcomeUnknown):
        export_chunk(pipeline.db, pipeline.client, key)
    backend.disconnect(pipeline.client._settings.client_id, TENANT)
    result = export_chunk(pipeline.db, pipeline.client, key)
    assert result.stopped
    assert pipeline.status() == {i: "sending" for i in ids}, "still to be looked up when it is connected again"
    (detail,) = pipeline.db.execute("SELECT detail FROM xero_sync.run_entity").fetchone()
    assert "no longer connected" in detail
    assert pipeline.db.execute(
        "SELECT count(*) FROM xero_sync.api_log WHERE method = 'GET' AND http_status = 403").fetchone()[0] == 1


def test_finding_7_tracking_is_checked_against_the_organisations_categories_never_dropped(pipeline):
    from astute_xero.export import chunk_planning, contacts, run_validation, sync_state
    from astute_xero.export.validation import DocumentValidator

    backend = pipeline.xero.backend
    backend.add_tracking_category(TENANT, "Region", ["North", "South"])
    customer = pipeline.data.customer("Harbour Constructions")

    def tracked(number: str, name: str | None, option: str | None) -> int:
        return pipeline.data.invoice(pipeline.entity, customer, number=number,
                                     lines=[Line(tracking_name=name, tracking_option=option)])

    good = tracked("T-1", "region", "north")  # Xero matches ignoring case
    no_option = tracked("T-2", "Region", None)
    unknown = tracked("T-3", "Region", "East")
    pipeline.data.flush()
    run_id = pipeline.select()
    run_validation.validate_run(pipeline.db, pipeline.client, run_id, DocumentValidator())
    contacts.resolve_contacts(pipeline.db, pipeline.client, run_id)
    for key in chunk_planning.plan_chunks(pipeline.db, run_id, sync_state.exporting_tenants(pipeline.db, run_id)):
        export_chunk(pipeline.db, pipeline.client, key)

    assert pipeline.status() == {good: "exported"}
    (x,) = in_xero(pipeline)
    (tracking,) = x["LineItems"][0]["Tracking"]
    assert (tracking["Name"], tracking["Option"]) == ("Region", "North") and tracking["TrackingOptionID"]
    issues = dict(pipeline.db.execute("SELECT document_id, message FROM xero_sync.validation_issue"))
    assert "tracking category 'Region' but no option" in issues[no_option]
    assert "no active option 'East'" in issues[unknown] and "North, South" in issues[unknown]
    assert sum(1 for r in backend.requests if r.path.endswith("/TrackingCategories")) == 1, "read once per run"


# ---------------------------------------------------------------- issue 19
def custom_connection(pipeline, database_url: str, client_id: str = "custom-connection") -> XeroClient:
    """The organisation moved to another Xero app (a new client id): here a Custom Connection to it."""
    from astute_xero.xero.pacing import Pacer
    from astute_xero.xero.tokens import CLIENT_CREDENTIALS, TokenStore, XeroConnectionSettings, obtain_with_sdk
    from devtools.xero_setup import SANDBOX_TIMEOUTS

    pipeline.xero.backend.identity.register_app(client_id, client_id + "-secret", custom_tenant_id=TENANT,
                                                created=dt.date(2026, 6, 1))
    settings = XeroConnectionSettings("xero_default", client_id, client_id + "-secret", grant_type=CLIENT_CREDENTIALS,
                                      api_url=pipeline.xero.url, identity_url=pipeline.xero.url)

    def connect():
        import psycopg

        return psycopg.connect(database_url, autocommit=True)

    return XeroClient(settings, TokenStore(connect, settings, obtain_with_sdk), Pacer(connect), **SANDBOX_TIMEOUTS)


def test_issue_19_finding_3_after_a_change_of_xero_app_what_the_old_app_sent_is_found_not_sent_again(
        pipeline, database_url):
    ids = unnumbered(pipeline, 2)
    (key,) = pipeline.plan()
    backend = pipeline.xero.backend
    backend.faults.drop_after_commit_next(1)  # the old app's call: Xero created both, the answer was lost
    with pytest.raises(ChunkOutcomeUnknown):
        export_chunk(pipeline.db, pipeline.client, key)
    assert len(in_xero(pipeline)) == 2
    backend.advance(3600)  # long after Xero forgot the Idempotency-Key
    shift_attempts_back(pipeline, 1)
    new_app = custom_connection(pipeline, database_url)
    try:
        result = export_chunk(pipeline.db, new_app, key)
    finally:
        new_app.close()
    assert (result.reconciled, result.exported) == (2, 0)
    assert {r.client_id for r in backend.requests if r.method == "GET" and r.path.endswith("/Invoices")} == {
        "custom-connection"}, "the lookup was made by the new app"
    assert_exactly_once(pipeline, ids)


def test_issue_19_finding_4_in_a_sydney_session_a_timed_out_unnumbered_invoice_is_found_not_sent_again(pipeline):
    # Every session of a database whose timezone is Australia/Sydney reads timestamptz as Sydney time.
    pipeline.db.execute("SET timezone = 'Australia/Sydney'")
    ids = unnumbered(pipeline, 1)
    (key,) = pipeline.plan()
    client = XeroClient(pipeline.client._settings, pipeline.client._tokens, pipeline.client._pacer,
                        read_timeout_s=1, late_commit_margin_s=2)
    pipeline.xero.backend.faults.commit_late_next(2.5)  # Xero commits after our client has given up
    with pytest.raises(ChunkOutcomeUnknown):
        export_chunk(pipeline.db, client, key)
    (claimed,) = pipeline.db.execute("SELECT first_claimed_at FROM xero_sync.invoice_export").fetchone()
    assert claimed.utcoffset() >= dt.timedelta(hours=10), "the claim is read back in Sydney time"

    result = export_chunk(pipeline.db, client, key)
    assert (result.exported, result.reconciled) == (0, 1)
    assert_exactly_once(pipeline, ids)


def test_issue_19_finding_4_in_a_sydney_session_the_incremental_read_back_sees_a_payment(pipeline):
    from astute_xero.readback.status_sync import sync_organisation

    pipeline.db.execute("SET timezone = 'Australia/Sydney'")
    customer = pipeline.data.customer("Harbour Constructions")
    invoice = pipeline.data.invoice(pipeline.entity, customer, number="SYD-1")
    pipeline.data.flush()
    pipeline.run()
    sync_organisation(pipeline.db, pipeline.client, TENANT, full=True)
    (since,) = pipeline.db.execute("SELECT modified_since FROM xero_sync.status_sync").fetchone()
    assert since.utcoffset() >= dt.timedelta(hours=10), "where the read stands is read back in Sydney time"

    backend = pipeline.xero.backend
    backend.advance(60)
    (xero_id,) = pipeline.db.execute("SELECT xero_invoice_id::text FROM xero_sync.invoice_export").fetchone()
    backend.record_payment(TENANT, xero_id, "5.00", dt.date(2026, 7, 1))
    outcome = sync_organisation(pipeline.db, pipeline.client, TENANT)
    assert not outcome.full and outcome.documents_changed == 1
    (paid,) = pipeline.db.execute("SELECT amount_paid FROM xero_sync.xero_document WHERE astute_id = %s",
                                  (invoice,)).fetchone()
    assert paid == Decimal("5.00")
