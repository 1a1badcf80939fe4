"""`make demo`: one real export, end to end, on this machine.

A real PostgreSQL (embedded, or a fresh database on ASTUTE_DB_URL's server) with
Astute's schema and demo data; the Xero sandbox on loopback with two
organisations; `airflow dags test xero_invoice_export` as a data engineer would
run it; then the run's summary, as a finance person would read it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import closing

import psycopg

from astute_xero.report import run_summary
from devtools import astute_db, demo_data
from devtools.xero_setup import airflow_connection_json, authorise_app
from xero_sandbox import XeroSandbox

DEMO_DATABASE = "astute_xero_demo"
AIRFLOW_HOME = astute_db.REPO_ROOT / ".airflow" / "demo"


def airflow(*args: str, env: dict[str, str], quiet: bool = True) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args], env=env, text=True,
        capture_output=quiet, check=False,
    )
    if result.returncode != 0:
        if quiet:
            sys.stderr.write(result.stdout[-5000:] + result.stderr[-5000:])
        raise SystemExit(f"airflow {' '.join(args)} failed (exit {result.returncode})")


def main() -> None:
    print("Starting PostgreSQL and loading Astute's schema and demo data ...")
    database_url = astute_db.create_database(astute_db.server_url(), DEMO_DATABASE)
    sandbox = XeroSandbox.start(host="127.0.0.1", port=0)
    tenants = demo_data.seed_xero(sandbox.backend)
    app = authorise_app(sandbox.backend, list(tenants.values()))
    with psycopg.connect(database_url, autocommit=True) as conn:
        astute_db.load_astute_schema(conn)
        demo_data.load_astute(conn, tenants)
    print(f"Xero sandbox listening on {sandbox.url} with organisations: {', '.join(tenants)}")

    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(astute_db.REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(astute_db.REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_ASTUTE_DB": astute_db.airflow_connection_json(database_url),
        "AIRFLOW_CONN_XERO_DEFAULT": airflow_connection_json(app, sandbox.url),
    }
    print("Preparing Airflow (metadata database, xero_api pool) ...")
    airflow("db", "migrate", env=env)
    airflow("pools", "set", "xero_api", "10", "Xero API: chunk task slots (5 per organisation, 2 organisations)", env=env)
    print("Running: airflow dags test xero_invoice_export  (task logs follow)\n")
    airflow("dags", "test", "xero_invoice_export", env=env, quiet=False)

    with closing(psycopg.connect(database_url, autocommit=True)) as conn:
        (run_id,) = conn.execute("SELECT max(run_id) FROM xero_sync.export_run").fetchone()
        summary = run_summary.summarise_run(conn, run_id)
        chunks = conn.execute(
            "SELECT tenant_id, endpoint, chunk_no, item_count, http_status, duration_ms FROM xero_sync.api_log "
            "WHERE run_id = %s AND endpoint IN ('Invoices', 'CreditNotes') AND method = 'PUT' ORDER BY id",
            (run_id,),
        ).fetchall()
    names = {tenant_id: name for name, tenant_id in tenants.items()}
    print("\n" + "=" * 78)
    print(run_summary.render_summary(summary))
    print("\nAPI log (one row per chunk sent to Xero):")
    for tenant_id, endpoint, chunk_no, items, status, duration in chunks:
        what = "invoice(s)" if endpoint == "Invoices" else "credit note(s)"
        print(f"  {names.get(tenant_id, tenant_id)} chunk {chunk_no}: {items} {what}, HTTP {status}, {duration} ms")
    print("\nNow in the Xero sandbox:")
    for name, tenant_id in tenants.items():
        invoices = sandbox.backend.invoices(tenant_id)
        credit_notes = sandbox.backend.credit_notes(tenant_id)
        allocated = sum(len(cn["Allocations"]) for cn in credit_notes)
        print(f"  {name}: {len(invoices)} invoice(s), {len(credit_notes)} credit note(s) ({allocated} allocation(s)), "
              f"{len(sandbox.backend.contacts(tenant_id))} contact(s)")
    print(f"\nXero Integration report pages (open in a browser): {AIRFLOW_HOME / 'reports'}/*.html")
    print("=" * 78)
    sandbox.stop()


if __name__ == "__main__":
    main()
