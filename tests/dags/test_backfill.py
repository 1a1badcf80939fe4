"""Backfills the Airflow way: `airflow backfill create`, run by a real scheduler and API server.

Two past daily intervals are backfilled; each run exports the reset items dated within its own
interval, and nothing else: not what was exported already, not history, not other days.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.dags.conftest import AU_TENANT

pytestmark = pytest.mark.e2e

GO_LIVE = dt.date(2026, 6, 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def airflow(*args: str, env: dict[str, str], timeout: int = 120) -> str:
    result = subprocess.run([sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_a_backfill_over_two_past_intervals_exports_only_the_reset_items_in_them(world, tmp_path: Path):
    entity = world.data.entity("Astute AU", tenant_id=AU_TENANT, go_live=GO_LIVE)
    customer = world.data.customer("Harbour Constructions")
    day = {n: world.data.invoice(entity, customer, number=f"D{n}", invoice_date=dt.date(2026, 5, 28) + dt.timedelta(days=n))
           for n in range(8)}  # May 28 .. June 4
    # Credit notes of May 30 (crediting no invoice), May 31 (crediting D3) and June 3.
    credit = {n: world.data.credit_note(entity, customer, invoice_id=day[3] if n == 3 else None, number=f"C{n}",
                                        credit_date=dt.date(2026, 5, 28) + dt.timedelta(days=n)) for n in (2, 3, 6)}
    world.data.flush()
    ok, _ = world.run(date_to="2026-06-01")  # the regular export: June 1 only (May is history)
    assert ok
    sent_before = {x["InvoiceNumber"] for x in world.xero_invoices(AU_TENANT)}
    assert sent_before == {"D4"}
    # History of May 30 and May 31 is reset, and so is an invoice of June 3 (outside the backfill).
    ok, _ = world.trigger("xero_reset_for_export", invoice_ids=[day[2], day[3], day[6]],
                          credit_note_ids=list(credit.values()))
    assert ok

    port = free_port()
    home = tmp_path / "airflow"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "PYTHONPATH": str(REPO_ROOT),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": "test-only-jwt-secret-for-this-airflow-home",
        # Only the backfill runs: no scheduled run of today beside it (that one is the daily export's job).
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    }
    airflow("db", "migrate", env=env)
    airflow("pools", "set", "xero_api", "5", "Xero API", env=env)
    airflow("dags", "reserialize", env=env)
    airflow("dags", "unpause", "xero_invoice_export", env=env)  # backfills run only for unpaused DAGs
    # The intervals of May 30 and May 31: [May 30, May 31) and [May 31, June 1).
    airflow("backfill", "create", "--dag-id", "xero_invoice_export", "--from-date", "2026-05-30",
            "--to-date", "2026-05-31", "--reprocess-behavior", "none", env=env)

    servers = [
        subprocess.Popen([sys.executable, "-m", "airflow", command], env=env, start_new_session=True,
                         stdout=(tmp_path / f"{command}.log").open("w"), stderr=subprocess.STDOUT)
        for command in ("api-server", "scheduler")
    ]
    try:
        deadline = time.monotonic() + 240
        while True:
            states = airflow("dags", "list-runs", "xero_invoice_export", "-o", "plain", env=env)
            run_lines = [line for line in states.splitlines() if line.startswith("xero_invoice_export")]
            backfill_lines = [line for line in run_lines if "backfill__" in line]
            if len(backfill_lines) == 2 and all("success" in l or "failed" in l for l in run_lines):
                break
            assert time.monotonic() < deadline, states + (tmp_path / "scheduler.log").read_text()[-3000:]
            time.sleep(3)
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
        for server in servers:
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
    assert all("success" in line for line in backfill_lines), backfill_lines

    # What each backfill run exported: the reset items of its own interval, nothing else.
    by_run = world.db.execute(
        "SELECT r.params->>'date_from', r.params->>'date_to', "
        "       coalesce(array_agg(i.invoice_number ORDER BY i.invoice_number) FILTER (WHERE i.id IS NOT NULL), '{}') "
        "FROM xero_sync.export_run r "
        "LEFT JOIN xero_sync.invoice_export x ON x.run_id = r.run_id AND x.status = 'exported' "
        "LEFT JOIN astute.invoice i ON i.id = x.invoice_id "
        "WHERE r.airflow_run_id LIKE 'backfill%%' GROUP BY r.run_id ORDER BY 1"
    ).fetchall()
    assert by_run == [("2026-05-30", "2026-05-30", ["D2"]), ("2026-05-31", "2026-05-31", ["D3"])]
    numbers = sorted(x["InvoiceNumber"] for x in world.xero_invoices(AU_TENANT))
    assert numbers == ["D2", "D3", "D4"], "history not reset, later days and D4 (exported before) stay as they were"
    assert world.export_status()[day[6]] == "reset", "June 3 is outside the backfill: still waiting"

    # Credit notes alike: each run its own day's, allocated where they credit an invoice.
    credit_by_run = world.db.execute(
        "SELECT r.params->>'date_from', array_agg(c.credit_note_number), array_agg(x.allocation_status) "
        "FROM xero_sync.export_run r "
        "JOIN xero_sync.credit_note_export x ON x.run_id = r.run_id AND x.status = 'exported' "
        "JOIN astute.credit_note c ON c.id = x.credit_note_id "
        "WHERE r.airflow_run_id LIKE 'backfill%%' GROUP BY r.run_id ORDER BY 1"
    ).fetchall()
    assert credit_by_run == [("2026-05-30", ["C2"], [None]), ("2026-05-31", ["C3"], ["allocated"])]
    (june_3,) = world.db.execute("SELECT status FROM xero_sync.credit_note_export WHERE credit_note_id = %s",
                                 (credit[6],)).fetchone()
    assert june_3 == "reset"
