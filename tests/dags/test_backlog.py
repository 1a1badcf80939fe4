"""Issue 10: a backlog past Airflow's map limit drains by itself, run after run, nothing sent twice."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from tests.dags.conftest import AU_TENANT, GO_LIVE

pytestmark = pytest.mark.e2e


def continuation_of(world, dag_run):
    """The run a finished run triggered to continue its backlog (in Airflow's metadata database): its conf and
    run_after, or None."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        follower = session.query(DagRun).filter(DagRun.dag_id == dag_run.dag_id,
                                                DagRun.run_id == f"continues_{xero_run_id(world, dag_run)}").one_or_none()
        return None if follower is None else (follower.conf, follower.run_after)


def xero_run_id(world, dag_run) -> int:
    (run_id,) = world.db.execute("SELECT run_id FROM xero_sync.export_run WHERE airflow_run_id = %s",
                                 (dag_run.run_id,)).fetchone()
    return run_id


def test_a_backlog_past_the_map_limit_continues_in_the_next_runs_with_nothing_sent_twice(world, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "2")  # Airflow's map limit, scaled down: 2 chunk tasks a kind
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = world.data.customer("Harbour Constructions Pty Ltd")
    ids = [world.data.invoice(entity, customer, number=f"B-{n:04d}", invoice_date=dt.date(2026, 6, 1) + dt.timedelta(days=n % 30))
           for n in range(450)]
    world.data.flush()

    runs, conf = 0, {}
    while True:
        ok, dag_run = world.run(**conf)
        assert ok
        runs += 1
        follower = continuation_of(world, dag_run)
        if follower is None:
            break
        conf, run_after = follower
        assert conf["continues_run_id"] == xero_run_id(world, dag_run) and conf["date_to"]
        assert run_after <= dt.datetime.now(dt.timezone.utc), "budget left: the next run may start at once"
        assert runs < 5, "the backlog must drain"

    assert runs == 3  # 200 + 200 + 50
    assert world.export_status() == {i: "exported" for i in ids}
    numbers = Counter(invoice["InvoiceNumber"] for invoice in world.xero_invoices())
    assert len(numbers) == 450 and set(numbers.values()) == {1}, "every invoice in Xero exactly once"
    puts = world.api_log()
    assert len(puts) == 5 and sorted(run for run, *_ in puts) == sorted([puts[0][0]] * 2 + [puts[2][0]] * 2 + [puts[4][0]])
    # Each run validated only what it could send.
    selected = [row[0] for row in world.db.execute(
        "SELECT invoices_selected FROM xero_sync.export_run WHERE kind = 'export' ORDER BY run_id")]
    assert selected == [200, 200, 50]


def continuation_runs(world) -> dict[str, dict]:
    """Every continuation run of the export in Airflow's metadata database: run id -> conf."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return {run.run_id: run.conf for run in session.query(DagRun).filter(
            DagRun.dag_id == "xero_invoice_export", DagRun.run_id.like("continues_%"))}


def test_a_run_leaving_only_failed_and_waiting_documents_is_not_continued(world):
    """What Xero refused fails again at once, and a credit note waiting for that invoice waits again: a run
    that follows at once would only repeat them. Only documents left for lack of room are continued."""
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = world.data.customer("Coastal Logistics")
    good = [world.data.invoice(entity, customer, number=f"INV-{n}") for n in range(1, 4)]
    clash = world.data.invoice(entity, customer, number="INV-CLASH")
    world.data.credit_note(entity, customer, invoice_id=clash, number="CN-CLASH")
    world.data.flush()
    contact_id = world.xero.backend.add_contact(AU_TENANT, "Someone Else")
    world.xero.backend.seed_invoice(AU_TENANT, contact_id=contact_id, invoice_number="INV-CLASH")
    before = continuation_runs(world)

    ok, dag_run = world.run()

    assert ok
    status = world.export_status()
    assert [status[i] for i in good] == ["exported"] * 3 and status[clash] == "failed"
    (waiting,) = world.db.execute("SELECT count(*) FROM xero_sync.run_document WHERE run_id = %s AND stage = 'waiting'",
                                  (xero_run_id(world, dag_run),)).fetchone()
    assert waiting == 1, "the credit note waits for its invoice"
    assert continuation_runs(world) == before, "nothing was left for lack of room: no run follows"
