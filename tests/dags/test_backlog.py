"""Issue 10: a backlog past Airflow's map limit drains by itself, run after run, nothing sent twice."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections import Counter

import pytest

from astute_xero.export import tasks
from devtools import astute_db
from devtools.astute_data import AstuteData
from devtools.xero_setup import authorise_app
from tests.conftest import connect_airflow
from tests.dags.conftest import AU_TENANT, GO_LIVE, NZ_TENANT

pytestmark = pytest.mark.e2e


def continuation_of(world, dag_run):
    """The run a finished run triggered to continue its backlog (in Airflow's metadata database): its conf and
    run_after, or None."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        follower = session.query(DagRun).filter(DagRun.dag_id == dag_run.dag_id,
                                                DagRun.run_id == tasks.continuation_run_id(
                                                    dag_run.run_id, xero_run_id(world, dag_run))).one_or_none()
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


def test_each_airflow_run_gets_its_own_continuation_even_after_a_restore_restarts_the_export_run_ids(
        world, database_url, monkeypatch):
    """xero_sync's run ids start again when the Astute database is restored from a backup; Airflow's run ids
    do not. A continuation named after the export run alone was refused as already there (the continuation
    of the run before the restore) and silently skipped."""
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "1")  # one chunk task a kind: 100 documents a run
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = world.data.customer("Harbour Constructions Pty Ltd")
    for n in range(101):
        world.data.invoice(entity, customer, number=f"R-{n:04d}")
    world.data.flush()
    earlier = continuation_runs(world)

    ok, before_restore = world.run()
    assert ok
    (first,) = continuation_runs(world).keys() - earlier.keys()

    # The restore: Astute's database as it was before the integration went live (no xero_sync, so its token
    # chain too is gone: the organisation is authorised afresh), with other invoices, for another organisation.
    astute_db.load_astute_schema(world.db)
    data = AstuteData(world.db)
    data.regions()
    entity = data.entity("Astute NZ", region="NZ", tenant_id=NZ_TENANT, go_live=GO_LIVE)
    customer = data.customer("Kiwi Freight Ltd")
    for n in range(101):
        data.invoice(entity, customer, number=f"NZ-{n:04d}")
    data.flush()
    connect_airflow(monkeypatch, database_url, authorise_app(world.xero.backend, [NZ_TENANT]), world.xero.url)

    ok, after_restore = world.run()
    assert ok
    assert xero_run_id(world, after_restore) == continuation_runs(world)[first]["continues_run_id"], \
        "the restored database numbers its export runs from the start again"
    new = continuation_runs(world).keys() - earlier.keys() - {first}
    assert len(new) == 1, "the run after the restore is continued too, not skipped as already there"
    (second,) = new
    assert continuation_runs(world)[second]["continues_run_id"] == xero_run_id(world, after_restore)

    # A retry of continue_backlog (the same Airflow run) names the same run, finds it there and adds none.
    retry = subprocess.run([sys.executable, "-m", "airflow", "tasks", "test", "xero_invoice_export", "continue_backlog",
                            after_restore.run_id], capture_output=True, text=True, timeout=600)
    assert second in retry.stdout + retry.stderr, retry.stdout[-3000:] + retry.stderr[-3000:]
    assert continuation_runs(world).keys() - earlier.keys() == {first, second}
