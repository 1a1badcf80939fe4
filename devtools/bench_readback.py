"""Read back at scale (a part of `make bench`): what xero_status_sync costs on an organisation of a million.

The dataset is what a year and a half of exports leaves: BENCH_READBACK_INVOICES (default 1,000,000) Astute
invoices of one billing entity, two lines each as the export sends them, every one recorded as exported in
xero_sync.invoice_export with its Xero id and Url; the sandbox holds the copies the export's PUTs made (same
lines and totals, the customer's linked Contact, the number, the Url from ASTUTE_INVOICE_URL's template,
AUTHORISED; one in five paid in full and one in twenty part-paid since), each created at its export time. Astute
rows go in by generate_series, the export rows by COPY, the sandbox's records through its backend
(SandboxBackend.seed_invoices_in_bulk: the PUT's own rules per distinct set of lines). The sandbox runs in a
process of its own (SandboxProcess, spawned), as Xero is not in the worker: it is seeded, answers and records the
day's payments there, and the bench drives it over a pipe.

Measured through the real code path, status_sync.sync_organisation with a XeroClient over HTTP to the sandbox
(pages of 1,000), the pacer's limits lifted:
  (a) a full read of the organisation (the first, into an empty xero_document);
  (b) an incremental read after CHANGES payments received in Xero that day (record_payment, as finance does).
Drift found must be 0 in both (payments are not drift): the bench fails otherwise.

Our part = the read's wall time minus the time inside its calls to Xero (each call's duration as the API log
records it: the HTTP exchange and the SDK reading the answer) and minus the pacer's sleeps for Xero's minute limit
(the sandbox keeps Xero's 60 calls a minute: a read that outruns it waits, which is what XERO_PAGE_S stands for);
and, robust to other load on the machine, the CPU time of our threads (the read's, outside the calls, and the
page writer's, which writes a page while the next is asked for) plus the read's PostgreSQL backend's. Where the
writing overlaps a call it is not in the wall figure: on real Xero a call is mostly waiting on the network; here
the sandbox answers from a process of its own, on the same two cores (the CPU figure counts the writing either
way). The pacer's own bookkeeping around each call is ours in the wall figure (its PostgreSQL work runs on
the pacer's connection, outside the CPU figure). The time inside the sandbox itself (its own
record of each request) is reported apart, so the SDK's share of a call is visible too. Xero's time per page is
XERO_PAGE_S: a sequential read cannot go faster than Xero's 60 calls a minute, and Xero takes about a second or
more to answer a page of 1,000 invoices with their lines; the sandbox is not asked to sleep it
(BENCH_READBACK_LATENCY_S, default 0), since our part is measured outside the calls. Target: our part at most
5 % of Xero's time, for (a) and (b).

    python -m devtools.bench_readback          # environment: BENCH_READBACK_INVOICES, ASTUTE_DB_URL
"""

from __future__ import annotations

import datetime as dt
import gc
import multiprocessing
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psycopg
from cryptography.fernet import Fernet

from astute_xero.export.chunk_export import invoice_url_template
from astute_xero.operations.migrations import apply_migrations
from astute_xero.readback import status_sync
from astute_xero.sql import SQL_DIR
from astute_xero.xero.client import XeroClient
from astute_xero.xero.pacing import OrganisationLimits, Pacer, XeroLimits
from astute_xero.xero.tokens import TokenStore, XeroConnectionSettings, obtain_with_sdk
from devtools import astute_db
from devtools.xero_setup import authorise_app
from xero_sandbox import XeroSandbox
from xero_sandbox.backend import HistoricInvoice
from xero_sandbox.books import INVOICE

INVOICES = int(os.environ.get("BENCH_READBACK_INVOICES", "1000000"))
CHANGES = 1_000
CUSTOMERS = 200
XERO_PAGE_S = 1.0
LATENCY_S = float(os.environ.get("BENCH_READBACK_LATENCY_S", "0"))
PROFILE = os.environ.get("BENCH_READBACK_PROFILE") == "1"
TARGET = 0.05
DATABASE = "astute_xero_bench_readback"
FIRST_DAY = dt.date(2025, 6, 1)
DAYS = 540  # invoices dated FIRST_DAY to 2026-11-22, exported at 10:00-18:00 UTC on their day
HOURS = range(30, 47)  # the labour line's quantity: 17 different invoices' worth
LABOUR_RATE, ALLOWANCE_QTY, ALLOWANCE_RATE = Decimal("52.3750"), Decimal("2.0000"), Decimal("12.3456")
GST = Decimal("0.10")
CENT = Decimal("0.01")

ASTUTE_ROWS = """
INSERT INTO astute.regulatory_region VALUES ('AU', 'Australia', 'AUD');
INSERT INTO astute.billing_entity (id, name, default_regulatory_region, xero_tenant_id, xero_go_live_date)
VALUES (1, 'Read-back', 'AU', %(tenant)s, '2025-01-01');
INSERT INTO astute.customer (id, name) SELECT c, 'Customer ' || c FROM generate_series(1, %(customers)s) c;
INSERT INTO astute.invoice (id, billing_entity_id, customer_id, invoice_number, status, invoice_date, due_date,
                            sent_at)
SELECT n + 1, 1, n %% %(customers)s + 1, 'RB-' || lpad(n::text, 7, '0'), 'Sent', d, d + 14, d + time '09:00'
FROM generate_series(0, %(invoices)s - 1) n, LATERAL (SELECT %(first_day)s::date + n * %(days)s / %(invoices)s AS d) x;
INSERT INTO astute.invoice_line (id, invoice_id, line_no, description, quantity, unit_amount, account_code, tax_type)
SELECT 2 * n + 1, n + 1, 1, 'Labour hire - week ending', 30 + n %% 17, %(labour_rate)s, '200', 'OUTPUT'
FROM generate_series(0, %(invoices)s - 1) n
UNION ALL
SELECT 2 * n + 2, n + 1, 2, 'Allowance', %(allowance_qty)s, %(allowance_rate)s, '200', 'OUTPUT'
FROM generate_series(0, %(invoices)s - 1) n;
"""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _invoice_day(n: int) -> tuple[dt.date, float]:
    """Invoice n's date, and when the export created it in Xero (epoch seconds)."""
    day, within = divmod(n * DAYS, INVOICES)
    date = FIRST_DAY + dt.timedelta(days=day)
    start = dt.datetime.combine(date, dt.time(10), dt.timezone.utc).timestamp()
    return date, start + within / INVOICES * 8 * 3600


def seed_sandbox(sandbox: XeroSandbox) -> dict:
    """Xero's side of the honest dataset (in the sandbox's process): the organisation, the app, the customers'
    Contacts and the copies the export's PUTs made."""
    backend = sandbox.backend
    started, rss_before = time.perf_counter(), peak_rss_mb()
    tenant = backend.add_tenant("Read-back Org")
    app = authorise_app(backend, [tenant])
    url = invoice_url_template()
    contacts = [backend.add_contact(tenant, f"Customer {c + 1}") for c in range(CUSTOMERS)]
    line_sets, totals = [], []
    for hours in HOURS:
        labour, allowance = _cents(hours * LABOUR_RATE), _cents(ALLOWANCE_QTY * ALLOWANCE_RATE)
        line_sets.append((
            {"Description": "Labour hire - week ending", "Quantity": Decimal(hours), "UnitAmount": LABOUR_RATE,
             "AccountCode": "200", "TaxType": "OUTPUT"},
            {"Description": "Allowance", "Quantity": ALLOWANCE_QTY, "UnitAmount": ALLOWANCE_RATE,
             "AccountCode": "200", "TaxType": "OUTPUT"},
        ))
        totals.append(labour + allowance + _cents(labour * GST) + _cents(allowance * GST))

    def historic() -> Iterator[HistoricInvoice]:
        for n in range(INVOICES):
            date, created = _invoice_day(n)
            paid = totals[n % 17] if n % 5 == 0 else Decimal("100.00") if n % 20 == 1 else None
            yield HistoricInvoice(
                contact_id=contacts[n % CUSTOMERS], number=f"RB-{n:07d}", date=date,
                due_date=date + dt.timedelta(days=14), url=url.format(invoice_id=n + 1), lines=line_sets[n % 17],
                updated=created, paid=paid, paid_on=date + dt.timedelta(days=10) if paid else None,
                paid_at=created + 10 * 86400 if paid else None)

    xero_ids = backend.seed_invoices_in_bulk(tenant, historic(), created_by=app.client_id)
    backend.cache_lists(tenant)
    # A million records the sandbox keeps for good: out of the collector's generations, they cost its own
    # answers no garbage-collection passes.
    gc.collect()
    gc.freeze()
    return {"tenant": tenant, "app": app, "contacts": contacts, "xero_ids": xero_ids,
            "sandbox_s": time.perf_counter() - started, "sandbox_mb": peak_rss_mb() - rss_before}


def pay_today(sandbox: XeroSandbox, tenant: str, xero_ids: list[str]) -> None:
    """CHANGES payments received today, as finance records them in Xero: every other one in full."""
    backend = sandbox.backend
    unpaid = [i for n, i in enumerate(xero_ids) if n % 5 != 0 and n % 20 != 1]
    step = max(1, len(unpaid) // CHANGES)
    for k, xero_id in enumerate(unpaid[::step][:CHANGES]):
        due = backend.ledger(tenant).document(INVOICE, xero_id).amount_due
        backend.record_payment(tenant, xero_id, due if k % 2 == 0 else Decimal("100.00"))


def answered_s(sandbox: XeroSandbox, since: int, started_wall: float) -> float:
    """The sandbox's own time answering the API calls it recorded after the first `since` requests."""
    answered = [r for r in sandbox.backend.requests[since:]
                if r.method == "GET" and "/api.xro/2.0/" in r.path and r.started >= started_wall - 1]
    return sum(r.ended - r.started for r in answered) - LATENCY_S * len(answered)


def _serve(pipe: Connection) -> None:
    """The sandbox's process: start it, then do what the bench asks until it says stop."""
    sandbox = XeroSandbox.start(host="127.0.0.1", port=0)
    if LATENCY_S:
        sandbox.backend.faults.latency(LATENCY_S, path_prefix="/api.xro/2.0/")
    state: dict[str, Any] = {}

    def seed() -> dict:
        state.update(seed_sandbox(sandbox))
        return state

    commands: dict[str, Callable[..., Any]] = {
        "seed": seed,
        "pay_today": lambda: pay_today(sandbox, state["tenant"], state["xero_ids"]),
        "requests": lambda: len(sandbox.backend.requests),
        "answered_s": lambda since, started_wall: answered_s(sandbox, since, started_wall),
    }
    pipe.send(sandbox.url)
    try:
        while (message := pipe.recv())[0] != "stop":
            command, args = message
            try:
                pipe.send((True, commands[command](*args)))
            except Exception as error:  # reported to the bench, which raises it
                pipe.send((False, f"{command}: {error!r}"))
    finally:
        sandbox.stop()


class SandboxProcess:
    """The sandbox in a process of its own, as Xero is not in the worker: its million records, its answers and
    its garbage collection do not share the read's interpreter. A fresh interpreter (spawned, not forked): it
    inherits none of the bench's connections or threads (`make bench` runs other parts before this one)."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), name="xero-sandbox", daemon=True)
        self._process.start()
        self.url: str = self._pipe.recv()

    def ask(self, command: str, *args: Any) -> Any:
        self._pipe.send((command, args))
        ok, value = self._pipe.recv()
        if not ok:
            raise RuntimeError(f"the sandbox's process failed: {value}")
        return value

    def stop(self) -> None:
        self._pipe.send(("stop", ()))
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()


def prepare(conn: psycopg.Connection, sandbox: SandboxProcess) -> dict:
    """The honest dataset: Astute's invoices, their export rows, and Xero's copies in the sandbox."""
    values = {"customers": CUSTOMERS, "invoices": INVOICES, "first_day": FIRST_DAY, "days": DAYS,
              "labour_rate": LABOUR_RATE, "allowance_qty": ALLOWANCE_QTY, "allowance_rate": ALLOWANCE_RATE}
    seeded = sandbox.ask("seed")
    tenant, contacts, xero_ids, url = seeded["tenant"], seeded["contacts"], seeded["xero_ids"], invoice_url_template()
    values["tenant"] = tenant
    astute_started = time.perf_counter()
    for statement in ASTUTE_ROWS.split(";\n"):
        if statement.strip():
            conn.execute(statement, {k: v for k, v in values.items() if f"%({k})s" in statement})
    astute_s = time.perf_counter() - astute_started

    started = time.perf_counter()
    with conn.cursor().copy("COPY xero_sync.contact_link (customer_id, tenant_id, xero_contact_id, xero_contact_name) "
                            "FROM STDIN") as copy:
        for c, contact in enumerate(contacts):
            copy.write_row((c + 1, tenant, contact, f"Customer {c + 1}"))
    with conn.cursor().copy("COPY xero_sync.invoice_export (invoice_id, tenant_id, status, xero_invoice_id, attempts, "
                            "exported_at, first_claimed_at, last_sent_at, source_url, updated_at) FROM STDIN") as copy:
        for n, xero_id in enumerate(xero_ids):
            exported = dt.datetime.fromtimestamp(_invoice_day(n)[1], dt.timezone.utc)
            copy.write_row((n + 1, tenant, "exported", xero_id, 1, exported, exported, exported,
                            url.format(invoice_id=n + 1), exported))
    conn.execute("VACUUM ANALYZE")
    export_s = time.perf_counter() - started
    return {"tenant": tenant, "app": seeded["app"], "astute_s": astute_s, "sandbox_s": seeded["sandbox_s"],
            "sandbox_mb": seeded["sandbox_mb"], "export_rows_s": export_s}


class TimedConnection:
    """The connection a profiled read is given (BENCH_READBACK_PROFILE=1): each statement's time by its name in
    include/sql, a COPY from its first row to its end (the rows built in Python included); the rest delegated."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn
        self._names = {path.read_text(encoding="utf-8"): path.stem for path in SQL_DIR.glob("*.sql")}
        self.seconds: dict[str, float] = defaultdict(float)

    def timed(self, query: Any) -> Iterator[None]:
        name = self._names.get(query, "other SQL") if isinstance(query, str) else "other SQL"
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        with contextmanager(self.timed)(query):
            return self._conn.execute(query, params, **kwargs)

    @contextmanager
    def transaction(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """The transaction as psycopg's, its COMMIT timed."""
        with self._conn.transaction(*args, **kwargs) as transaction:
            yield transaction
            committing = time.perf_counter()
        self.seconds["COMMIT (a page's transaction)"] += time.perf_counter() - committing

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        cursor, timed = self._conn.cursor(*args, **kwargs), self.timed

        class TimedCursor:
            def copy(self, statement: str, *copy_args: Any, **copy_kwargs: Any) -> Any:
                @contextmanager
                def copying() -> Iterator[Any]:
                    with contextmanager(timed)(statement), cursor.copy(statement, *copy_args, **copy_kwargs) as copy:
                        yield copy
                return copying()

            def __getattr__(self, name: str) -> Any:
                return getattr(cursor, name)

        return TimedCursor()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _time_rows(seconds: dict[str, float]) -> Callable[[], None]:
    """Time status_sync's Python making a page's COPY rows from the SDK's documents (in the reading thread, before
    the page goes to the writer: _page_rows; in a read back before it, _row, inside the COPY's time); undo with the
    function returned."""
    name = "_page_rows" if hasattr(status_sync, "_page_rows") else "_row"
    original = getattr(status_sync, name)

    def timed(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args)
        finally:
            seconds["Python: the page's COPY rows from the SDK's documents"] += time.perf_counter() - started

    setattr(status_sync, name, timed)
    return lambda: setattr(status_sync, name, original)


def measure(url: str, sandbox: SandboxProcess, data: dict, *, full: bool) -> dict:
    """One sync of the organisation through the real code: wall time, the time inside the calls, drift."""
    tenant, app = data["tenant"], data["app"]
    settings = XeroConnectionSettings("xero_default", app.client_id, app.client_secret, app.refresh_token,
                                      api_url=sandbox.url, identity_url=sandbox.url)

    def connect() -> psycopg.Connection:
        return psycopg.connect(url, autocommit=True)

    # Our limits lifted; the sandbox keeps Xero's 60 calls a minute, and the pacer (reading X-MinLimit-Remaining)
    # sleeps for it when a read outruns it: that sleep is Xero's limit, the time XERO_PAGE_S stands for, not ours.
    pacer = Pacer(connect, limits=XeroLimits(OrganisationLimits(per_minute=1_000_000, per_day=10_000_000)))
    client = XeroClient(settings, TokenStore(connect, settings, obtain_with_sdk), pacer)
    inside = {"wall_s": 0.0, "cpu_s": 0.0}
    documents_modified = client.documents_modified

    def timed_call(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return documents_modified(*args, **kwargs)
        finally:
            inside["wall_s"] += time.perf_counter() - wall
            inside["cpu_s"] += time.thread_time() - cpu

    client.documents_modified = timed_call  # type: ignore[method-assign]
    # Pages are written by a thread of the read's own (status_sync._PageWriter) while the next call is answered:
    # its CPU is ours too. (A read back that writes in its own thread has nothing to add: this harness measures both.)
    writer_cpu = {"s": 0.0}
    writer = getattr(status_sync, "_PageWriter", None)
    write_page = writer._write if writer else None

    def timed_write(self: Any, *args: Any) -> int:
        cpu = time.thread_time()
        try:
            return write_page(self, *args)
        finally:
            writer_cpu["s"] += time.thread_time() - cpu

    if writer:
        writer._write = timed_write  # type: ignore[method-assign]
    try:
        with connect() as conn:
            (backend_pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()
            pg_cpu_before = _process_cpu_s(backend_pid)
            cpu_before = time.thread_time()
            (log_before,) = conn.execute("SELECT coalesce(max(id), 0) FROM xero_sync.api_log").fetchone()
            requests_before = sandbox.ask("requests")
            started_wall = time.time()
            paced_before = pacer.waited_s
            started = time.perf_counter()
            timed = TimedConnection(conn) if PROFILE else None
            undo = _time_rows(timed.seconds) if timed else (lambda: None)
            try:
                outcome = status_sync.sync_organisation(timed or conn, client, tenant, full=full)
            finally:
                undo()
            total_s = time.perf_counter() - started
            paced_s = pacer.waited_s - paced_before
            cpu_s = time.thread_time() - cpu_before
            pg_cpu_s = _process_cpu_s(backend_pid) - pg_cpu_before
            (calls_ms, calls) = conn.execute(
                "SELECT coalesce(sum(duration_ms), 0), count(*) FROM xero_sync.api_log WHERE id > %s AND tenant_id = %s "
                "AND run_id IS NULL", (log_before, tenant)).fetchone()
            (open_drift,) = conn.execute("SELECT count(*) FROM xero_sync.drift WHERE tenant_id = %s "
                                         "AND resolved_at IS NULL", (tenant,)).fetchone()
            (stored,) = conn.execute("SELECT count(*) FROM xero_sync.xero_document WHERE tenant_id = %s",
                                     (tenant,)).fetchone()
    finally:
        if writer:
            writer._write = write_page  # type: ignore[method-assign]
        client.close()
    return {"full": full, "calls": outcome.calls, "logged_calls": calls, "read": outcome.documents_read,
            "changed": outcome.documents_changed, "drift_found": outcome.drift_found, "open_drift": open_drift,
            "stored": stored, "total_s": total_s, "calls_s": calls_ms / 1000, "paced_s": paced_s,
            "sandbox_s": sandbox.ask("answered_s", requests_before, started_wall),
            "statements_s": dict(timed.seconds) if timed else {}, "client_calls_s": inside["wall_s"],
            "ours_cpu_s": cpu_s - inside["cpu_s"] + writer_cpu["s"], "writer_cpu_s": writer_cpu["s"],
            "pg_cpu_s": pg_cpu_s}


def _process_cpu_s(pid: int) -> float:
    """CPU seconds (user and system) a process on this machine has used: the read's PostgreSQL backend."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run() -> dict:
    os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    sandbox = SandboxProcess()
    url = astute_db.create_database(astute_db.server_url(), DATABASE)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            astute_db.load_astute_schema(conn)
            apply_migrations(conn)
            print(f"Read back: preparing {INVOICES:,} exported invoices (Astute, xero_sync, the sandbox) ...", flush=True)
            data = prepare(conn, sandbox)
        print(f"  Astute rows {data['astute_s']:.0f} s, sandbox {data['sandbox_s']:.0f} s "
              f"(+{data['sandbox_mb']:.0f} MB), export rows {data['export_rows_s']:.0f} s; full read ...", flush=True)
        full = measure(url, sandbox, data, full=True)
        sandbox.ask("pay_today")
        print("  incremental read after the day's payments ...", flush=True)
        incremental = measure(url, sandbox, data, full=False)
    finally:
        sandbox.stop()
        astute_db.drop_database(astute_db.server_url(), DATABASE)
    return {"invoices": INVOICES, "prepare": {k: v for k, v in data.items() if k.endswith(("_s", "_mb"))},
            "full": full, "incremental": incremental}


def report(figures: dict) -> list[str]:
    """Print the figures; return the targets missed."""
    failures = []
    prep = figures["prepare"]
    print(f"\nRead back (xero_status_sync) of an organisation with {figures['invoices']:,} invoices Astute exported "
          f"(Xero's copies match): prepared in {prep['astute_s'] + prep['sandbox_s'] + prep['export_rows_s']:.0f} s, "
          f"the sandbox's records {prep['sandbox_mb']:.0f} MB; Xero's time {XERO_PAGE_S:.1f} s a page")
    print(f"  {'read':<12} {'calls':>6} {'read':>9} {'drift':>6} {'wall s':>8} {'in calls s':>10} {'sandbox s':>9} "
          f"{'ours s':>7} {'ours/page ms':>12} {'of Xero':>8} {'CPU ours+PG/page ms':>20} {'of Xero':>8}")
    for name in ("full", "incremental"):
        r = figures[name]
        ours_s = r["total_s"] - r["calls_s"] - r["paced_s"]
        ratio = ours_s / (r["calls"] * XERO_PAGE_S)
        cpu_s = r["ours_cpu_s"] + r["pg_cpu_s"]
        r.update(ours_s=ours_s, ratio=ratio, cpu_ratio=cpu_s / (r["calls"] * XERO_PAGE_S))
        print(f"  {name:<12} {r['calls']:>6,} {r['read']:>9,} {r['drift_found']:>6,} {r['total_s']:>8.1f} "
              f"{r['calls_s']:>10.1f} {r['sandbox_s']:>9.1f} {ours_s:>7.1f} {ours_s / r['calls'] * 1000:>12.1f} "
              f"{ratio:>8.1%} {cpu_s / r['calls'] * 1000:>20.1f} {r['cpu_ratio']:>8.1%}")
        print(f"      (CPU: ours {r['ours_cpu_s'] / r['calls'] * 1000:.1f} ms a page, of it the page writer's thread "
              f"{r['writer_cpu_s'] / r['calls'] * 1000:.1f} ms, PostgreSQL's backend "
              f"{r['pg_cpu_s'] / r['calls'] * 1000:.1f} ms; the client's calls {r['client_calls_s']:.1f} s "
              f"of which the sandbox's own {r['sandbox_s']:.1f} s; the pacer slept {r['paced_s']:.1f} s for Xero's "
              f"minute limit, not counted as ours)")
        if r["statements_s"]:
            r["statements_s"]["the pacer and the token around each call (outside the API log's duration)"] = (
                r["client_calls_s"] - r["calls_s"] - r["paced_s"])
        for statement, seconds in sorted(r["statements_s"].items(), key=lambda item: -item[1]):
            print(f"      {statement:<55} {seconds / r['calls'] * 1000:>8.1f} ms a page ({seconds:.1f} s)")
        if r["drift_found"] or r["open_drift"]:
            failures.append(f"read back ({name}): {r['drift_found']} drift found, {r['open_drift']} open, where there is none")
        if ratio > TARGET:
            failures.append(f"read back ({name}): our part is {ratio:.1%} of Xero's time (target {TARGET:.0%})")
    if figures["full"]["stored"] != figures["invoices"]:
        failures.append(f"read back: {figures['full']['stored']:,} documents stored of {figures['invoices']:,}")
    return failures


def main() -> int:
    failures = report(run())
    print("\nbench (read back): " + ("all targets met" if not failures else "MISSED:\n  " + "\n  ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
