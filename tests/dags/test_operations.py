"""Going live, resetting, removing links: the operations DAGs with the export, for real."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.dags.conftest import AU_TENANT

pytestmark = pytest.mark.e2e

GO_LIVE = dt.date(2026, 1, 1)
MIGRATION = dt.date(2026, 6, 1)


@pytest.fixture
def live_entity(world):
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = world.data.customer("Harbour Constructions")
    history = [world.data.invoice(entity, customer, number=f"OLD-{n}", invoice_date=MIGRATION - dt.timedelta(days=10 + n))
               for n in range(5)]
    current = [world.data.invoice(entity, customer, number=f"NEW-{n}", invoice_date=MIGRATION + dt.timedelta(days=n))
               for n in range(3)]
    world.data.flush()
    return entity, customer, history, current


def numbers_in_xero(world) -> list[str]:
    return sorted(x["InvoiceNumber"] for x in world.xero_invoices(AU_TENANT))


def test_after_a_mock_export_the_regular_export_sends_nothing_dated_before_the_migration(world, live_entity):
    entity, _, history, current = live_entity
    ok, _ = world.trigger("xero_historical_mock_export", billing_entity_id=entity, migration_date=MIGRATION.isoformat())
    assert ok
    assert world.export_status() == {i: "mock_exported" for i in history}
    assert world.xero.backend.requests == [], "a mock export calls Xero not at all"
    (kind, status) = world.db.execute("SELECT kind, status FROM xero_sync.export_run").fetchone()
    assert (kind, status) == ("mock_export", "sent")

    ok, _ = world.trigger("xero_historical_mock_export", billing_entity_id=entity, migration_date=MIGRATION.isoformat())
    assert ok, "triggering again is safe"
    assert world.db.execute("SELECT status FROM xero_sync.export_run ORDER BY run_id DESC").fetchone() == ("nothing_to_send",)
    assert world.export_status() == {i: "mock_exported" for i in history}

    ok, _ = world.run()
    assert ok
    assert numbers_in_xero(world) == ["NEW-0", "NEW-1", "NEW-2"]


def test_resetting_one_mock_exported_invoice_sends_exactly_that_one(world, live_entity):
    entity, _, history, _ = live_entity
    world.trigger("xero_historical_mock_export", billing_entity_id=entity, migration_date=MIGRATION.isoformat())
    ok, _ = world.trigger("xero_reset_for_export", invoice_ids=[history[2]])
    assert ok
    assert world.export_status()[history[2]] == "reset"
    ok, _ = world.run()
    assert ok
    assert numbers_in_xero(world) == ["NEW-0", "NEW-1", "NEW-2", "OLD-2"]
    assert world.export_status()[history[2]] == "exported"


def test_resetting_an_exported_invoice_is_refused_with_its_number(world, live_entity, capfd, caplog):
    entity, _, history, current = live_entity
    world.trigger("xero_historical_mock_export", billing_entity_id=entity, migration_date=MIGRATION.isoformat())
    world.run()
    capfd.readouterr()
    ok, _ = world.trigger("xero_reset_for_export", invoice_ids=[current[0], history[0]])
    assert not ok
    task_log = "".join(capfd.readouterr()) + caplog.text
    assert "Invoice NEW-0: exported to Xero on" in task_log and "cannot be reset" in task_log
    statuses = world.export_status()
    assert statuses[current[0]] == "exported", "the exported one is untouched"
    assert statuses[history[0]] == "reset", "the other one is reset all the same"


def test_a_reset_by_entity_and_dates_covers_history_never_sent(world, live_entity):
    entity, _, history, _ = live_entity
    ok, _ = world.trigger("xero_reset_for_export", billing_entity_id=entity,
                          date_from=(MIGRATION - dt.timedelta(days=11)).isoformat(),
                          date_to=(MIGRATION - dt.timedelta(days=10)).isoformat())
    assert ok
    reset = {i for i, s in world.export_status().items() if s == "reset"}
    dates = dict(world.db.execute("SELECT id, invoice_date FROM astute.invoice"))
    assert reset == {history[0], history[1]}, {i: dates[i] for i in reset}


def test_removing_a_link_makes_the_next_export_link_afresh(world, live_entity):
    entity, customer, _, _ = live_entity
    world.run()
    (first,) = world.db.execute("SELECT xero_contact_id::text FROM xero_sync.contact_link").fetchone()
    # In Xero the Contact is merged into a tidier one; Astute starts afresh.
    tidy = world.xero.backend.add_contact(AU_TENANT, "Harbour Constructions Pty Ltd")
    contact = world.xero.backend.tenants[AU_TENANT].contacts[first]
    contact.status, contact.merged_to_contact_id, contact.name = "ARCHIVED", tidy, "Harbour Constructions"
    ok, _ = world.trigger("xero_remove_contact_link", customer_id=customer)
    assert ok
    assert world.db.execute("SELECT count(*) FROM xero_sync.contact_link").fetchone() == (0,)

    world.db.execute("UPDATE astute.customer SET name = 'Harbour Constructions Pty Ltd' WHERE id = %s", (customer,))
    world.data.invoice(entity, customer, number="NEW-9", invoice_date=MIGRATION)
    world.data.flush()
    ok, _ = world.run()
    assert ok
    (relinked,) = world.db.execute("SELECT xero_contact_id::text FROM xero_sync.contact_link").fetchone()
    assert relinked == tidy != first
    new = next(x for x in world.xero_invoices(AU_TENANT) if x["InvoiceNumber"] == "NEW-9")
    assert new["Contact"]["ContactID"] == tidy


def test_credit_notes_are_mock_exported_and_reset_like_invoices(world, live_entity):
    entity, customer, _, _ = live_entity
    world.db.execute(
        "INSERT INTO astute.credit_note (id, billing_entity_id, customer_id, credit_note_number, status, credit_date) "
        "VALUES (800, %s, %s, 'CN-OLD', 'Sent', %s), (801, %s, %s, 'CN-NEW', 'Sent', %s)",
        (entity, customer, MIGRATION - dt.timedelta(days=3), entity, customer, MIGRATION),
    )
    ok, _ = world.trigger("xero_historical_mock_export", billing_entity_id=entity, migration_date=MIGRATION.isoformat())
    assert ok
    states = dict(world.db.execute("SELECT credit_note_id, status FROM xero_sync.credit_note_export"))
    assert states == {800: "mock_exported"}
    ok, _ = world.trigger("xero_reset_for_export", credit_note_ids=[800])
    assert ok
    assert world.db.execute("SELECT status FROM xero_sync.credit_note_export WHERE credit_note_id = 800").fetchone() == ("reset",)
