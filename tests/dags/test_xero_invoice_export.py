"""The export DAG end to end: real PostgreSQL, the Xero sandbox over HTTP through xero-python, dag.test()."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from devtools.astute_data import Line
from tests.dags.conftest import AU_TENANT, GO_LIVE, NZ_TENANT

pytestmark = pytest.mark.e2e


def test_350_invoices_go_as_4_chunks_then_a_second_run_sends_nothing(world):
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = world.data.customer("Harbour Constructions Pty Ltd")
    ids = [
        world.data.invoice(entity, customer, number=f"INV-{n:05d}", invoice_date=dt.date(2026, 6, 1) + dt.timedelta(days=n % 90),
                           lines=[Line(unit_amount=Decimal("52.3751") + n, quantity=Decimal("7.5000")),
                                  Line(description="Allowance", unit_amount=Decimal("0.3333"), quantity=Decimal("3"))])
        for n in range(350)
    ]
    world.data.flush()

    ok, _ = world.run()
    assert ok
    assert world.export_status() == {i: "exported" for i in ids}
    chunks = world.api_log()
    assert sorted((c[2], c[3], c[4]) for c in chunks) == [(1, 100, 200), (2, 100, 200), (3, 100, 200), (4, 50, 200)]
    in_xero = world.xero_invoices()
    assert len(in_xero) == 350
    assert {inv["Type"] for inv in in_xero} == {"ACCREC"} and {inv["Status"] for inv in in_xero} == {"AUTHORISED"}

    # The totals Xero computes from the 4-decimal unit amounts equal those computed from Astute's lines
    # (OUTPUT is 10 % GST, rounded per line).
    astute_totals = {
        number: (subtotal, tax)
        for number, subtotal, tax in world.db.execute(
            "SELECT i.invoice_number, sum(round(l.quantity * l.unit_amount, 2)),"
            "       sum(round(round(l.quantity * l.unit_amount, 2) * 0.10, 2)) "
            "FROM astute.invoice i JOIN astute.invoice_line l ON l.invoice_id = i.id GROUP BY i.invoice_number"
        )
    }
    for inv in in_xero:
        subtotal, tax = astute_totals[inv["InvoiceNumber"]]
        assert (Decimal(str(inv["SubTotal"])), Decimal(str(inv["TotalTax"])), Decimal(str(inv["Total"]))) == (
            subtotal, tax, subtotal + tax
        ), inv["InvoiceNumber"]

    ok, _ = world.run()
    assert ok
    assert len(world.api_log()) == 4, "the second run must not call PUT /Invoices"
    assert len(world.xero_invoices()) == 350


def test_a_mixed_chunk_exports_the_good_and_fails_the_bad_with_xeros_message(world):
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = world.data.customer("Coastal Logistics")
    good = [world.data.invoice(entity, customer, number=f"INV-{n}") for n in range(1, 6)]
    clash = world.data.invoice(entity, customer, number="INV-CLASH")
    world.data.flush()
    contact_id = world.xero.backend.add_contact(AU_TENANT, "Someone Else")
    world.xero.backend.seed_invoice(AU_TENANT, contact_id=contact_id, invoice_number="INV-CLASH")

    ok, _ = world.run()
    assert ok
    status = world.export_status()
    assert [status[i] for i in good] == ["exported"] * 5
    assert status[clash] == "failed"
    (error,) = world.db.execute("SELECT last_error FROM xero_sync.invoice_export WHERE invoice_id = %s", (clash,)).fetchone()
    assert "Invoice # must be unique" in error and "a sales invoice INV-CLASH for 'Someone Else'" in error
    assert len(world.api_log()) == 1, "one chunk, one call"
    (outcome,) = world.db.execute("SELECT outcome FROM xero_sync.api_log WHERE endpoint = 'Invoices'").fetchone()
    assert sorted(o["status"] for o in outcome) == ["exported"] * 5 + ["failed"]
    (run_status,) = world.db.execute("SELECT status FROM xero_sync.export_run ORDER BY run_id DESC LIMIT 1").fetchone()
    assert run_status == "sent", "a run counts as Sent when any invoice went"

    # Fixed in Astute (renumbered): the failed invoice goes in the next run, and only it.
    world.db.execute("UPDATE astute.invoice SET invoice_number = 'INV-CLASH-2' WHERE id = %s", (clash,))
    ok, _ = world.run()
    assert ok
    assert world.export_status()[clash] == "exported"
    assert [row[3] for row in world.api_log()] == [6, 1]


def test_a_customer_name_differing_only_in_case_links_to_the_existing_contact(world):
    existing = world.xero.backend.add_contact(AU_TENANT, "ACME MINING PTY LTD")
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    acme = world.data.customer("Acme Mining Pty Ltd")
    cafe = world.data.customer("Zoë's Café & Bar")
    first = world.data.invoice(entity, acme, number="INV-1")
    world.data.invoice(entity, cafe, number="INV-2")
    world.data.flush()

    ok, _ = world.run()
    assert ok
    links = dict(world.db.execute("SELECT customer_id, xero_contact_id::text FROM xero_sync.contact_link"))
    assert links[acme] == existing
    contacts = world.xero.backend.contacts(AU_TENANT)
    assert sorted(c["Name"] for c in contacts) == ["ACME MINING PTY LTD", "Zoë's Café & Bar"]
    by_number = {inv["InvoiceNumber"]: inv for inv in world.xero_invoices()}
    assert by_number["INV-1"]["Contact"]["ContactID"] == existing
    assert world.export_status()[first] == "exported"

    # The link is reused by ContactID: no lookup by name and no new Contact the second time.
    world.data.invoice(entity, acme, number="INV-3")
    world.data.flush()
    before = len(world.xero.backend.requests)
    ok, _ = world.run()
    assert ok
    contact_calls = [r for r in world.xero.backend.requests[before:] if "/Contacts" in r.path]
    assert not [r for r in contact_calls if r.method != "GET" or "where" in r.query]
    assert len(world.xero.backend.contacts(AU_TENANT)) == 2
    assert {inv["InvoiceNumber"]: inv for inv in world.xero_invoices()}["INV-3"]["Contact"]["ContactID"] == existing


def test_a_null_currency_takes_the_entity_regions_default(world):
    nz = world.data.entity("Astute NZ", region="NZ", tenant_id=NZ_TENANT, go_live=GO_LIVE)
    au = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = world.data.customer("Kiwi Builders Ltd")
    world.data.invoice(nz, customer, number="NZ-1", currency=None)
    world.data.invoice(au, customer, number="AU-1", currency="USD")
    world.data.flush()

    ok, _ = world.run()
    assert ok
    assert [inv["CurrencyCode"] for inv in world.xero_invoices(NZ_TENANT)] == ["NZD"]
    assert [inv["CurrencyCode"] for inv in world.xero_invoices(AU_TENANT)] == ["USD"]


def test_only_sent_invoices_of_linked_live_entities_dated_from_go_live_are_sent(world):
    live = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    unlinked = world.data.entity("Astute UK", region="UK", tenant_id=None, go_live=GO_LIVE)
    not_live = world.data.entity("Astute NZ", region="NZ", tenant_id=NZ_TENANT, go_live=None)
    customer = world.data.customer("Metro Health")
    sent = world.data.invoice(live, customer, number="SENT-1")
    for status in ("Draft", "Approved", "Void"):
        world.data.invoice(live, customer, number=f"{status.upper()}-1", status=status)
    history = world.data.invoice(live, customer, number="HISTORY-1", invoice_date=GO_LIVE - dt.timedelta(days=1))
    world.data.invoice(unlinked, customer, number="UK-1")
    world.data.invoice(not_live, customer, number="NZ-1")
    world.data.flush()

    ok, _ = world.run()
    assert ok
    assert world.export_status() == {sent: "exported"}
    assert [inv["InvoiceNumber"] for inv in world.xero_invoices(AU_TENANT)] == ["SENT-1"]
    assert world.xero_invoices(NZ_TENANT) == []
    assert history not in world.export_status()
    decisions = dict(world.db.execute("SELECT billing_entity_id, decision FROM xero_sync.run_entity"))
    assert decisions == {live: "export", unlinked: "skipped_unlinked", not_live: "skipped_not_live"}


def test_invalid_invoices_are_held_back_with_reasons_and_the_valid_ones_still_go(world):
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = world.data.customer("Sunrise Aged Care")
    nameless = world.data.customer("   ")
    valid = world.data.invoice(entity, customer, number="OK-1")
    held = {
        world.data.invoice(entity, customer, number="NO-GL", lines=[Line(account_code=None)]): "no GL account code",
        world.data.invoice(entity, customer, number="BAD-GL", lines=[Line(account_code="999")]): "account code '999'",
        world.data.invoice(entity, customer, number="BAD-TAX", lines=[Line(tax_type="GSTFREE")]): "tax type 'GSTFREE'",
        world.data.invoice(entity, customer, number="EUR", currency="EUR"): "Currency EUR is not enabled",
        world.data.invoice(entity, nameless, number="NAMELESS"): "customer has no name",
        world.data.invoice(entity, customer, number="NO-LINES", lines=[]): "no lines",
        world.data.invoice(entity, customer, number="DATES", invoice_date=dt.date(2026, 6, 10),
                           due_date=dt.date(2026, 6, 1)): "due date 2026-06-01 is before the invoice date 2026-06-10",
    }
    world.data.flush()

    ok, _ = world.run()
    assert ok
    assert world.export_status() == {valid: "exported"}
    issues = dict(world.db.execute("SELECT document_id, string_agg(message, ' | ') FROM xero_sync.validation_issue GROUP BY 1"))
    assert set(issues) == set(held)
    for invoice_id, words in held.items():
        assert words in issues[invoice_id]
    assert [inv["InvoiceNumber"] for inv in world.xero_invoices()] == ["OK-1"]


def test_rotated_refresh_tokens_are_stored_and_the_chain_goes_on(world):
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = world.data.customer("Pacific Freight")
    world.data.invoice(entity, customer, number="T-1")
    world.data.flush()
    ok, _ = world.run()
    assert ok
    (stored,) = world.db.execute("SELECT refresh_token FROM xero_sync.oauth_token").fetchone()
    assert stored != world.app.refresh_token, "the pipeline keeps the rotated token, not the connection's"

    world.xero.backend.advance(3600)  # access token expired, original refresh token long dead
    world.data.invoice(entity, customer, number="T-2")
    world.data.flush()
    ok, _ = world.run()
    assert ok
    assert sorted(inv["InvoiceNumber"] for inv in world.xero_invoices()) == ["T-1", "T-2"]
