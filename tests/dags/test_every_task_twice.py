"""Every task of the export DAG is safe to run twice, after its commit (a worker killed after its work was
committed, a task cleared by hand): each task body is run twice in a row, in the DAG's order, against real
PostgreSQL and the sandbox over HTTP, and the run ends exactly as a run of each once would."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

import pytest

from devtools.astute_data import Line
from tests.dags.conftest import AU_TENANT, GO_LIVE, NZ_TENANT

pytestmark = pytest.mark.e2e


# What is not the run's state: the audit trail (every call is logged, a second one too), shared budgets, tokens.
NOT_STATE = ("api_log", "rate_budget", "oauth_token", "schema_migration", "lease")


def state(db) -> dict[str, list[str]]:
    """Every row of xero_sync's tables (but NOT_STATE), without the times it was written at (a read back's number
    of the last sync to finish is such a time, on a sequence)."""
    tables = [t for (t,) in db.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'xero_sync' AND table_type = 'BASE TABLE'")
        if t not in NOT_STATE]
    snapshot = {}
    for table in tables:
        rows = db.execute(
            f"SELECT (SELECT jsonb_object_agg(key, value) FROM jsonb_each(to_jsonb(t)) "
            f"        WHERE key NOT LIKE '%%\\_at' AND key NOT IN ('attempts', 'last_success_no'))::text FROM xero_sync.{table} t"
        ).fetchall()
        snapshot[table] = sorted(row[0] or "" for row in rows)
    return snapshot


def twice(db, task, *args):
    """Run the task body, then again after its commit: the second run changes nothing; returns the first's result."""
    first = task(*args)
    after_first = state(db)
    task(*args)
    after_second = state(db)
    changed = {t: (after_first[t], after_second[t]) for t in after_first if after_first[t] != after_second[t]}
    assert not changed, f"{task.__name__} run again changed {changed}"
    return first


def test_every_export_task_run_twice_after_its_commit_ends_as_run_once(world):
    from astute_xero.export import tasks

    au = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    nz = world.data.entity("Astute NZ", tenant_id=NZ_TENANT, go_live=GO_LIVE, region="NZ")
    harbour = world.data.customer("Harbour Constructions")
    kiwi = world.data.customer("Kiwi Freight")
    invoices = [world.data.invoice(au, harbour, number=f"AU-{n}", invoice_date=dt.date(2026, 6, 1 + n),
                                   lines=[Line(unit_amount=Decimal("100") + n)]) for n in range(5)]
    invoices += [world.data.invoice(nz, kiwi, number=None, invoice_date=dt.date(2026, 6, 2 + n),
                                    lines=[Line(unit_amount=Decimal("50") + n)]) for n in range(3)]
    bad = world.data.invoice(au, harbour, number="AU-BAD", lines=[Line(account_code="9999")])
    credit = world.data.credit_note(au, harbour, invoice_id=invoices[0], number="CN-1",
                                    lines=[Line(unit_amount=Decimal("10"))])
    world.data.flush()

    db = world.db
    run_id = twice(db, tasks.start_export_run, "xero_invoice_export", "manual__twice", {},
                   dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc))
    assert twice(db, tasks.extract_documents, run_id) == {"invoices": 9, "credit_notes": 1}
    assert twice(db, tasks.validate_documents, run_id)["held"] == 1
    twice(db, tasks.resolve_contacts, run_id)
    assert twice(db, tasks.plan_chunks, run_id) == {"invoices": 2, "credit notes": 1}
    for kind in ("invoice", "credit_note"):
        lanes = twice(db, tasks.export_lanes, run_id, kind)
        assert tasks.export_lanes(run_id, kind) == lanes
        for lane in lanes:
            assert twice(db, tasks.export_lane, lane)["exported"] > 0
    assert twice(db, tasks.allocate_credit_notes, run_id)["allocated"] == 1
    assert twice(db, tasks.write_back_run, run_id) == "sent"
    summary = twice(db, tasks.summarise_run, run_id)
    assert (summary["exported"], summary["held"]) == (9, 1)
    assert twice(db, tasks.continue_backlog, run_id) is None

    # Exactly once in Xero, and xero_sync says so.
    assert world.export_status() == {i: "exported" for i in invoices}
    numbers = Counter(x["InvoiceNumber"] for x in world.xero_invoices(AU_TENANT))
    assert numbers == {f"AU-{n}": 1 for n in range(5)}
    assert len(world.xero_invoices(NZ_TENANT)) == 3
    (note,) = world.xero.backend.credit_notes(AU_TENANT)
    assert note["RemainingCredit"] == 0 and len(note["Allocations"]) == 1
    assert bad not in world.export_status()
    chunks = world.db.execute(
        "SELECT tenant_id, kind, chunk_no, count(*) FROM xero_sync.export_chunk WHERE run_id = %s "
        "GROUP BY 1, 2, 3 HAVING count(*) > 1", (run_id,)).fetchall()
    assert chunks == []
    (puts,) = world.db.execute(
        "SELECT count(*) FROM xero_sync.api_log WHERE method = 'PUT' AND endpoint IN ('Invoices', 'CreditNotes')"
    ).fetchone()
    assert puts == 3, "one call per chunk"
    assert world.db.execute("SELECT count(*) FROM xero_sync.lease").fetchone() == (0,), "no lease left behind"


def test_every_task_of_the_other_dags_run_twice_after_its_commit_ends_as_run_once(world):
    """The read back, the mock export, reset for export, remove link and housekeeping."""
    from astute_xero.export import tasks
    from astute_xero.operations import retention
    from astute_xero.readback import tasks as readback

    au = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    nz = world.data.entity("Astute NZ", tenant_id=NZ_TENANT, go_live=dt.date(2026, 7, 1), region="NZ")
    harbour = world.data.customer("Harbour Constructions")
    kiwi = world.data.customer("Kiwi Freight")
    paid = world.data.invoice(au, harbour, number="AU-1", lines=[Line(unit_amount=Decimal("100"))])
    refused = world.data.invoice(au, harbour, number="AU-2", lines=[Line(tax_type="NONSUCH")])
    history = world.data.invoice(nz, kiwi, number="NZ-OLD", invoice_date=dt.date(2026, 5, 1))
    world.data.flush()
    db = world.db

    twice(db, tasks.mock_export, "xero_historical_mock_export", "manual__mock", {"billing_entity_id": nz})
    ok, _ = world.run()
    assert world.export_status()[paid] == "exported" and world.export_status()[history] == "mock_exported"
    xero_id = next(x["InvoiceID"] for x in world.xero_invoices(AU_TENANT) if x["InvoiceNumber"] == "AU-1")
    world.xero.backend.record_payment(AU_TENANT, xero_id, "50.00")

    organisations = twice(db, readback.organisations_to_read, {"billing_entity_ids": None,
                                                               "full_reconciliation": False})
    for full in (True, False):
        outcomes = [twice(db, readback.sync_organisation, organisation, full, "manual__sync")
                    for organisation in organisations]
        twice(db, readback.summarise_status_sync, outcomes)

    assert twice(db, tasks.reset_for_export, {"invoice_ids": [refused]})["reset"]
    assert twice(db, tasks.remove_contact_link, {"customer_id": harbour})
    twice(db, retention.apply_migrations_task)
    twice(db, retention.purge_work_rows_task, {"retention_days": 1})
    assert world.export_status()[refused] == "reset"
    (amount_due,) = db.execute(
        "SELECT amount_due FROM xero_sync.xero_document WHERE xero_id = %s", (xero_id,)).fetchone()
    assert amount_due == Decimal("4130.00")  # 38 x 100.00 and 10 % GST, less 50.00 paid
