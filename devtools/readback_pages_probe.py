"""A first full read's pages at scale, PostgreSQL only: status_sync's own COPY and upsert, page by page, without
Xero, the sandbox or the SDK (a probe for the statements, minutes a try where bench_readback takes 25).

The dataset is bench_readback's Astute invoices and lines (its ASTUTE_ROWS), each recorded in invoice_export as
exported with a random Xero id, in PROBE_INVOICES (default 1,000,000). A run empties xero_document and stores
every invoice as a first full read does: pages of 1,000, each in its own transaction (status_sync_page_settings,
COPY into the session's xero_page, status_sync_upsert), in invoice order (PROBE_ORDER=bench: the paid ones ten
days later, as bench_readback's Xero returns them). It prints, a page, the wall time of each part and the CPU of
the PostgreSQL backend. Statements given after the label run first on the probe's connection (a setting to try).

    python -m devtools.readback_pages_probe setup
    python -m devtools.readback_pages_probe run base
    python -m devtools.readback_pages_probe run temp_buffers "SET temp_buffers = '128MB'"
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time

import psycopg

from astute_xero.operations.migrations import apply_migrations
from astute_xero.readback.status_sync import _COPY_TYPES
from astute_xero.sql import load_sql
from devtools import astute_db
from devtools.bench_readback import (ALLOWANCE_QTY, ALLOWANCE_RATE, ASTUTE_ROWS, CUSTOMERS, DAYS, FIRST_DAY,
                                     LABOUR_RATE, _process_cpu_s)

INVOICES = int(os.environ.get("PROBE_INVOICES", "1000000"))
DATABASE = "astute_xero_readback_probe"
TENANT = "00000000-0000-4000-8000-00000000abcd"
PAGE = 1000
# PROBE_CHECKPOINT_EVERY=250: a CHECKPOINT every 250 pages, as a read of 17 minutes meets the server's own every 5
# minutes (each page's first change after one is written whole to the WAL); its own time is not counted.
CHECKPOINT_EVERY = int(os.environ.get("PROBE_CHECKPOINT_EVERY", "0"))


def setup(url: str) -> None:
    astute_db.create_database(astute_db.server_url(), DATABASE)
    with psycopg.connect(url, autocommit=True) as conn:
        astute_db.load_astute_schema(conn)
        apply_migrations(conn)
        values = {"tenant": TENANT, "customers": CUSTOMERS, "invoices": INVOICES, "first_day": FIRST_DAY,
                  "days": DAYS, "labour_rate": LABOUR_RATE, "allowance_qty": ALLOWANCE_QTY,
                  "allowance_rate": ALLOWANCE_RATE}
        for statement in ASTUTE_ROWS.split(";\n"):
            if statement.strip():
                conn.execute(statement, {k: v for k, v in values.items() if f"%({k})s" in statement})
        conn.execute("INSERT INTO xero_sync.invoice_export (invoice_id, tenant_id, status, xero_invoice_id, attempts, "
                     "exported_at, first_claimed_at, last_sent_at, source_url, updated_at) "
                     "SELECT i.id, %s, 'exported', gen_random_uuid(), 1, now(), now(), now(), "
                     "'https://astute.invalid/invoices/' || i.id, now() FROM astute.invoice i ORDER BY i.id", (TENANT,))
        conn.execute("VACUUM ANALYZE")


def run(url: str, label: str, settings: list[str]) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE xero_sync.xero_document")
        conn.execute("VACUUM ANALYZE xero_sync.xero_document")
        ids = conn.execute("SELECT invoice_id, xero_invoice_id FROM xero_sync.invoice_export "
                           "ORDER BY invoice_id").fetchall()
    if os.environ.get("PROBE_ORDER") == "bench":  # paid in full (1 in 5) or in part (1 in 20): ten days later
        later = INVOICES * 10 // DAYS
        ids.sort(key=lambda r: r[0] - 1 + (later if (r[0] - 1) % 5 == 0 or (r[0] - 1) % 20 == 1 else 0))
    updated = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    seconds = {"COPY": 0.0, "upsert": 0.0, "commit": 0.0}
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in settings:
            conn.execute(statement)
        (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()
        conn.execute(load_sql("status_sync_session"))
        read_at = dt.datetime.now(dt.timezone.utc)
        cpu_before, started = _process_cpu_s(pid), time.perf_counter()
        for start in range(0, len(ids), PAGE):
            rows = [("invoice", str(xero_id), f"RB-{n:07d}", "AUTHORISED", "11111111-1111-4111-8111-111111111111",
                     "Customer 1", "Exclusive", 100.0, 110.0, 110.0, 0.0, 0.0, dt.date(2026, 1, 15), None, None,
                     updated, True) for n, xero_id in ids[start:start + PAGE]]
            with conn.transaction():
                conn.execute(load_sql("status_sync_page_settings"))
                t0 = time.perf_counter()
                with conn.cursor().copy(load_sql("status_sync_copy")) as copy:
                    copy.set_types(_COPY_TYPES["invoice"])
                    for row in rows:
                        copy.write_row(row)
                t1 = time.perf_counter()
                conn.execute(load_sql("status_sync_upsert"), {"tenant_id": TENANT, "read_at": read_at, "sync_no": 1})
                t2 = time.perf_counter()
            seconds["COPY"] += t1 - t0
            seconds["upsert"] += t2 - t1
            seconds["commit"] += time.perf_counter() - t2
            if CHECKPOINT_EVERY and (start // PAGE + 1) % CHECKPOINT_EVERY == 0:
                t3 = time.perf_counter()
                conn.execute("CHECKPOINT")  # as the server's own would during a read of minutes (not counted)
                started += time.perf_counter() - t3
        pages = len(ids) / PAGE
        wall_ms = (time.perf_counter() - started) / pages * 1000
        cpu_ms = (_process_cpu_s(pid) - cpu_before) / pages * 1000
    parts = ", ".join(f"{name} {s / pages * 1000:.1f}" for name, s in seconds.items())
    return f"{label}: {pages:,.0f} pages; a page: wall {wall_ms:.1f} ms ({parts}), PostgreSQL CPU {cpu_ms:.1f} ms"


def main() -> None:
    url = astute_db.with_database(astute_db.server_url(), DATABASE)
    if sys.argv[1:2] == ["setup"]:
        setup(url)
    elif sys.argv[1:2] == ["run"] and len(sys.argv) >= 3:
        print(run(url, sys.argv[2], sys.argv[3:]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
