"""`make bench`: does Xero's rate limit, not our code, bound an export? Every figure a ratio from one run.

1. Preparation (extract, validate with Great Expectations, contacts, plan), as one run of the DAG's tasks
   does it, at BENCH_SIZES invoices of one organisation (default 100,000, 300,000 and 1,000,000, loaded
   one after the other into the same database; a credit note for one invoice in ten), against a raw
   COPY of the same documents and lines (the floor). A run takes only what it can send (Airflow's map
   limit: 1,024 chunks), so its cost should not grow with the backlog. Targets: the whole backlog's
   preparation (one run's, times the runs it takes) grows linearly, stays under 1.5 GB of memory, and
   takes at most 5 % of the time Xero needs to take the same invoices (60 calls a minute, 100 a call).
2. Write-back: 100,000 outcomes recorded as the export records them (one statement per chunk of 100, in
   its own transaction) against one bulk statement of the same rows.
3. Read back (xero_status_sync, devtools/bench_readback.py): an organisation whose BENCH_READBACK_INVOICES
   (default 1,000,000) invoices Astute exported and Xero holds as sent (some paid since): a full read and an
   incremental read of a day's 1,000 payments, through the real code over HTTP. Targets: drift found 0 in both,
   and our part (the read's time outside its calls to Xero) at most 5 % of Xero's time (1 s a page).
4. Throughput at the bound and scheduling (devtools/bench_throughput.py): a real Airflow deployment with
   parallel workers against the sandbox with realistic latency and limits scaled down in time; 1
   organisation with a backlog of several days, and 50 organisations with a few chunks each.
   BENCH_SCENARIOS (default A,B,C) on the LocalExecutor, BENCH_CELERY_SCENARIOS (default B) on a Celery
   cluster of two workers (`make test-cluster`'s). A third, C: 3 organisations as deployed, whole run and
   chunk phase against Xero's bound, CPU per chunk over every process against our own.
5. Waiting (devtools/bench_waiting.py): what workers waiting for an organisation's call slots cost the Astute
   database, in statements a second each (target <= 1).

BENCH_PARTS chooses the parts (default all: preparation,readback,waiting,throughput).

Results are printed as a table; BENCHMARKS.md keeps a full run.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import resource
import sys
import time
import uuid
from decimal import Decimal

import psycopg
from cryptography.fernet import Fernet

from astute_xero.export import backlog, chunk_planning, contacts, run_validation, sync_state
from astute_xero.export.chunk_export import _record_outcomes
from astute_xero.export.documents import INVOICE
from astute_xero.operations.migrations import apply_migrations
from astute_xero.xero.pacing import Pacer
from astute_xero.export.validation import DocumentValidator
from astute_xero.xero.client import XeroClient
from astute_xero.xero.tokens import TokenStore, XeroConnectionSettings, obtain_with_sdk
from devtools import astute_db, bench_readback
from devtools.astute_data import AstuteData, Line
from devtools.xero_setup import authorise_app
from xero_sandbox import XeroSandbox

SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "100000,300000,1000000").split(",")]
WRITE_BACK_ROWS = 100_000
CREDIT_NOTE_EVERY = 10
CUSTOMERS = 200
PREPARE_VS_XERO_MAX = 0.05
MEMORY_MAX_MB = 1536
LINEARITY_MAX = 1.5  # the largest size's preparation per invoice, at most this times the smallest's
DATABASE = "astute_xero_bench"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(data: AstuteData, entity: int, customers: list[int], start: int, stop: int) -> None:
    lines = [Line(), Line(description="Allowance", quantity=Decimal("2"), unit_amount=Decimal("12.3456"))]
    for n in range(start, stop):
        invoice = data.invoice(entity, customers[n % CUSTOMERS], number=f"B-{n}",
                               invoice_date=dt.date(2026, 1, 1) + dt.timedelta(days=n % 300), lines=lines)
        if n % CREDIT_NOTE_EVERY == 0:
            data.credit_note(entity, customers[n % CUSTOMERS], invoice_id=invoice, number=f"C-{n}", lines=lines[:1])
        if n % 50_000 == 49_999:
            data.flush()
    data.flush()


def copy_floor(conn: psycopg.Connection) -> float:
    started = time.perf_counter()
    with conn.cursor().copy(
        "COPY (SELECT i.id, i.invoice_number, c.name, i.invoice_date, i.due_date, i.currency, l.line_no, "
        "l.description, l.quantity, l.unit_amount, l.account_code, l.tax_type FROM astute.invoice i "
        "JOIN astute.customer c ON c.id = i.customer_id JOIN astute.invoice_line l ON l.invoice_id = i.id "
        "UNION ALL SELECT n.id, n.credit_note_number, c.name, n.credit_date, NULL, n.currency, l.line_no, "
        "l.description, l.quantity, l.unit_amount, l.account_code, l.tax_type FROM astute.credit_note n "
        "JOIN astute.customer c ON c.id = n.customer_id JOIN astute.credit_note_line l ON l.credit_note_id = n.id"
        ") TO STDOUT"
    ) as copy:
        for _ in copy:
            pass
    return time.perf_counter() - started


def prepare_one_run(conn: psycopg.Connection, client: XeroClient, pacer: Pacer) -> dict[str, float]:
    """One run up to its chunk keys, as the DAG's tasks do it (the default map limit and Xero's day)."""
    scope = sync_state.RunScope(None, None, dt.date(2026, 12, 31))
    phases: dict[str, float] = {}
    mark = time.perf_counter()
    run_id = sync_state.start_run(conn, kind="export", dag_id="bench", airflow_run_id=str(uuid.uuid4()), scope=scope)
    sync_state.decide_entities(conn, run_id, None)
    tenants = [t for t, _ in sync_state.exporting_tenants(conn, run_id)]
    outstanding = backlog.outstanding(conn, run_id, scope)
    capacity = backlog.selection_capacity(outstanding, pacer.day_budgets(tenants), chunk_planning.MAX_MAP_LENGTH)
    selected = sync_state.select_documents(conn, run_id, scope, capacity)
    phases["extract"] = time.perf_counter() - mark
    mark = time.perf_counter()
    run_validation.validate_run(conn, client, run_id, DocumentValidator())
    phases["validate"] = time.perf_counter() - mark
    mark = time.perf_counter()
    contacts.resolve_contacts(conn, client, run_id)
    phases["contacts"] = time.perf_counter() - mark
    mark = time.perf_counter()
    calls_left = {t: b.remaining for t, b in pacer.day_budgets(tenants).items()}
    keys = chunk_planning.plan_chunks(conn, run_id, sync_state.exporting_tenants(conn, run_id), calls_left=calls_left)
    phases["plan"] = time.perf_counter() - mark
    phases["documents"] = selected["invoices"] + selected["credit_notes"]
    phases["chunks"] = len(keys)
    phases["outstanding"] = sum(o.ready for o in outstanding.values())
    return phases


def preparation(conn: psycopg.Connection, url: str, sandbox: XeroSandbox) -> list[dict[str, float]]:
    tenant = sandbox.backend.add_tenant("Bench Org")
    app = authorise_app(sandbox.backend, [tenant])
    data = AstuteData(conn)
    data.regions()
    entity = data.entity("Bench", tenant_id=tenant, go_live=dt.date(2026, 1, 1))
    customers = [data.customer(f"Customer {n}") for n in range(CUSTOMERS)]
    settings = XeroConnectionSettings("xero_default", app.client_id, app.client_secret, app.refresh_token,
                                      api_url=sandbox.url, identity_url=sandbox.url)

    def connect() -> psycopg.Connection:
        return psycopg.connect(url, autocommit=True)

    pacer = Pacer(connect)
    client = XeroClient(settings, TokenStore(connect, settings, obtain_with_sdk), Pacer(connect))
    rss_before = peak_rss_mb()
    results = []
    loaded = 0
    for size in SIZES:
        print(f"Loading invoices {loaded:,} to {size:,} ...", flush=True)
        load(data, entity, customers, loaded, size)
        loaded = size
        conn.execute("VACUUM ANALYZE")
        floor_s = copy_floor(conn)
        phases = prepare_one_run(conn, client, pacer)
        phases.update(size=size, floor_s=floor_s, memory_mb=peak_rss_mb() - rss_before)
        results.append(phases)
    client.close()
    pacer.close()
    return results


def write_back(conn: psycopg.Connection) -> dict[str, float]:
    """100,000 outcomes: per chunk of 100 (as the export writes them) against one bulk statement."""
    ids = [row[0] for row in conn.execute("SELECT id FROM astute.invoice ORDER BY id LIMIT %s", (WRITE_BACK_ROWS,))]
    outcomes = [(i, "exported", str(uuid.uuid4()), None) for i in ids]

    def claim() -> None:
        conn.execute("DELETE FROM xero_sync.invoice_export")
        conn.execute("INSERT INTO xero_sync.invoice_export (invoice_id, tenant_id, status) "
                     "SELECT unnest(%s::bigint[]), 'bench', 'sending'", (ids,))

    claim()
    started = time.perf_counter()
    for start in range(0, len(outcomes), 100):
        with conn.transaction():
            _record_outcomes(conn, INVOICE, outcomes[start:start + 100])
    per_chunk_s = time.perf_counter() - started
    claim()
    started = time.perf_counter()
    with conn.transaction():
        _record_outcomes(conn, INVOICE, outcomes)
    bulk_s = time.perf_counter() - started
    (exported,) = conn.execute("SELECT count(*) FROM xero_sync.invoice_export WHERE status = 'exported'").fetchone()
    assert exported == len(ids)
    conn.execute("DELETE FROM xero_sync.invoice_export")
    return {"rows": len(ids), "per_chunk_s": per_chunk_s, "bulk_s": bulk_s}


def report(results: list[dict[str, float]], writes: dict[str, float]) -> list[str]:
    failures = []
    print("\nPreparation: one run (what it can send: 1,024 chunks) at each backlog size; the backlog's, from it; "
          "against a COPY of the backlog's rows (floor) and Xero's time to take them (1 call of 100 a second)")
    print(f"  {'invoices':>10} {'outstanding':>11} {'run docs':>9} {'chunks':>6} {'floor s':>8} {'extract':>8} "
          f"{'validate':>8} {'contacts':>8} {'plan':>6} {'run s':>7} {'backlog s':>9} {'/floor':>7} {'Xero s':>8} {'ratio':>6} "
          f"{'MB':>6}")
    per_invoice = []
    for r in results:
        run_s = r["extract"] + r["validate"] + r["contacts"] + r["plan"]
        # The runs that drain the backlog each prepare what they send: as this one, per document.
        backlog_s = run_s * r["outstanding"] / max(r["documents"], 1)
        xero_s = math.ceil(r["outstanding"] / 100)  # one call a second: Xero's 60 a minute
        ratio = backlog_s / xero_s
        per_invoice.append(backlog_s / r["outstanding"])
        print(f"  {r['size']:>10,} {r['outstanding']:>11,.0f} {r['documents']:>9,.0f} {r['chunks']:>6.0f} "
              f"{r['floor_s']:>8.1f} {r['extract']:>8.1f} {r['validate']:>8.1f} {r['contacts']:>8.1f} {r['plan']:>6.1f} "
              f"{run_s:>7.1f} {backlog_s:>9.0f} {backlog_s / r['floor_s']:>6.0f}x {xero_s:>8,} {ratio:>6.1%} "
              f"{r['memory_mb']:>6.0f}")
        if ratio > PREPARE_VS_XERO_MAX:
            failures.append(f"preparation at {r['size']:,} is {ratio:.1%} of Xero's time (target {PREPARE_VS_XERO_MAX:.0%})")
        if r["memory_mb"] > MEMORY_MAX_MB:
            failures.append(f"memory at {r['size']:,}: {r['memory_mb']:.0f} MB (target {MEMORY_MAX_MB} MB)")
    growth = per_invoice[-1] / per_invoice[0]
    print(f"  backlog preparation per invoice, largest size / smallest = {growth:.2f} (linear: <= {LINEARITY_MAX})")
    if growth > LINEARITY_MAX:
        failures.append(f"preparation grows faster than linearly ({growth:.2f}x per invoice)")
    print(f"\nWrite-back of {writes['rows']:,} outcomes: per chunk of 100 {writes['per_chunk_s']:.2f} s, one bulk statement "
          f"{writes['bulk_s']:.2f} s: {writes['per_chunk_s'] / writes['bulk_s']:.1f}x; per chunk "
          f"{writes['per_chunk_s'] / (writes['rows'] / 100) * 1000:.1f} ms of the 1,000 ms a call takes at Xero's limit")
    return failures


PARTS = ("preparation", "readback", "waiting", "throughput")


def main() -> int:
    """BENCH_PARTS (default every part, comma-separated) chooses what runs: `preparation` (1 and 2),
    `readback` (3), `waiting` (5) and `throughput` (4: BENCH_SCENARIOS, default A,B,C on the LocalExecutor,
    then BENCH_CELERY_SCENARIOS, default B, on the Celery cluster)."""
    parts = [p.strip() for p in os.environ.get("BENCH_PARTS", ",".join(PARTS)).split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"BENCH_PARTS: unknown part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}")
    # Outside Airflow there is no airflow.cfg: tokens are still sealed at rest, with a key of this bench's own.
    os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    failures: list[str] = []
    if "preparation" in parts:
        url = astute_db.create_database(astute_db.server_url(), DATABASE)
        sandbox = XeroSandbox.start(host="127.0.0.1", port=0)
        conn = psycopg.connect(url, autocommit=True)
        try:
            astute_db.load_astute_schema(conn)
            apply_migrations(conn)
            results = preparation(conn, url, sandbox)
            writes = write_back(conn)
        finally:
            sandbox.stop()
            conn.close()
            astute_db.drop_database(astute_db.server_url(), DATABASE)
        failures += report(results, writes)
    if "readback" in parts:
        failures += bench_readback.report(bench_readback.run())
    if "waiting" in parts:
        from devtools import bench_waiting

        failures += waiting_report(bench_waiting.run())
    if "throughput" in parts:
        failures += throughput()
    print("\nbench: " + ("all targets met" if not failures else "MISSED:\n  " + "\n  ".join(failures)))
    return 1 if failures else 0


def waiting_report(figures: dict) -> list[str]:
    """Workers waiting for an organisation's slots: statements a second each (target <= 1), never more than the
    organisation's slots in flight, and the hand-over once they free."""
    print(f"\nWaiting: {figures['waiting_workers']} workers wait {figures['window_s']:g} s for {figures['slots']} "
          f"slots: {figures['mean_queries_per_s_per_worker']} statements a second each on average, at most "
          f"{figures['peak_queries_per_s_per_worker']} in one second (target <= {figures['target_per_worker']}); "
          f"all waiters together at most {figures['peak_queries_per_s_all_waiters']} a second; hand-over beyond "
          f"the calls {figures['handover_s']} s; at most {figures['peak_in_flight']} in flight")
    failures = []
    if figures["peak_queries_per_s_per_worker"] > figures["target_per_worker"]:
        failures.append(f"waiting: {figures['peak_queries_per_s_per_worker']} statements a second from one waiting "
                        f"worker (target {figures['target_per_worker']})")
    if figures["peak_in_flight"] > figures["slots"]:
        failures.append(f"waiting: {figures['peak_in_flight']} calls in flight for {figures['slots']} slots")
    return failures


def throughput() -> list[str]:
    from devtools import bench_throughput

    failures = []
    local = [n for n in os.environ.get("BENCH_SCENARIOS", "A,B,C").split(",") if n]
    celery = [n for n in os.environ.get("BENCH_CELERY_SCENARIOS", "B").split(",") if n]
    runs = [(name, 0) for name in local] + [(name, 2) for name in celery]
    results = []
    for name, workers in runs:
        os.environ["BENCH_CELERY_WORKERS"] = str(workers)
        figures = bench_throughput.main([name])[name]
        results.append(figures)
        where = f"scenario {name} ({figures['executor']})"
        for label, ratio in bench_throughput.target_ratios(figures).items():
            if ratio is None or ratio < bench_throughput.TARGET_RATIO:
                failures.append(f"throughput, {where}: {label} {ratio} of what Xero allows "
                                f"(target {bench_throughput.TARGET_RATIO})")
        if figures["max_429_per_org_window"] > bench_throughput.TARGET_429_PER_WINDOW:
            failures.append(f"throughput, {where}: {figures['max_429_per_org_window']} 429s in a window")
        cpu = figures.get("cpu_s_per_chunk_phase")
        # A's chunk phase is three (scaled) days, mostly waiting for Xero's day with Airflow idle: not a cost per chunk.
        waits_for_days = figures["window"].startswith("day")
        if not waits_for_days and (cpu is None or cpu > bench_throughput.TARGET_CPU_PER_CHUNK_S):
            failures.append(f"throughput, {where}: {cpu} CPU-seconds per chunk over every process in the chunk "
                            f"phase (target {bench_throughput.TARGET_CPU_PER_CHUNK_S})")
    os.environ.pop("BENCH_CELERY_WORKERS", None)
    if len(results) > 1:
        print("\nAll throughput scenarios of this run, side by side:")
        bench_throughput.print_table(results)
    return failures


if __name__ == "__main__":
    sys.exit(main())
