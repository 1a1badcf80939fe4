"""What workers waiting for an organisation's call slots cost the Astute database (a part of `make bench`).

BENCH_WAITING_WORKERS (default 20) workers, each a thread with its own Pacer and connection (as the export's
workers have), ask for a call to one organisation whose 5 slots are held by 5 other workers for BENCH_WAITING_HOLD_S
(default 10) seconds. Every statement each waiter's connection sends is counted on the wire (libpq's trace: a
simple-protocol Query or an extended-protocol Sync is one round trip the server answers), second by second, from
when every waiter has queued until the holders are done. Then the holders finish and the waiters go through, each
holding its slot BENCH_WAITING_CALL_S (0.5 s): how long the hand-over takes, and that never more than 5 are in flight.

The server's own count (pg_stat_database.xact_commit + xact_rollback) is not the measure: a backend's counts reach
it up to 10 s late, and it counts the server's own transactions too (autovacuum analysing a fresh database's tables
gave bursts of 100-200 a second here). It agreed with the wire count where the waiters dominate it (the pacer
before issue 22: 86 against 89 statements a second per waiter).

    python -m devtools.bench_waiting            # environment: ASTUTE_DB_URL (else an embedded PostgreSQL)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
import threading
import time
import uuid
from collections import Counter
from typing import Any

import psycopg

import astute_xero
from astute_xero.operations.migrations import apply_migrations
from astute_xero.xero.pacing import Pacer
from devtools import astute_db

WORKERS = int(os.environ.get("BENCH_WAITING_WORKERS", "20"))
HOLD_S = float(os.environ.get("BENCH_WAITING_HOLD_S", "10"))
CALL_S = float(os.environ.get("BENCH_WAITING_CALL_S", "0.5"))
SLOTS = 5  # Xero's calls in progress at once per organisation (the pacer's default)
SETTLE_S = 3.0  # from the waiters' start until every one has queued and woken once (the server has their counts)
TENANT = "bench-waiting-org"
TARGET_PER_WORKER = 1.0  # issue 22: a waiting worker sends at most one statement a second


class WireLog:
    """Every statement the connections it makes send, as libpq traces them on the wire: a simple-protocol Query or
    an extended-protocol Sync is one round trip the server answers, whatever the code above libpq does."""

    _LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\tF\t\d+\t(Query|Sync)\b", re.M)
    _BEGIN = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\tF\t\d+\tQuery\t \"BEGIN\"", re.M)

    def __init__(self, database_url: str):
        self._url = database_url
        self._traced: list[tuple[psycopg.Connection, str]] = []
        self._lock = threading.Lock()

    def connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self._url, autocommit=True)
        fd, path = tempfile.mkstemp(prefix="pacer-wire-", suffix=".log")
        conn.pgconn.trace(fd)  # libpq writes it (buffered) and closes it at untrace
        with self._lock:
            self._traced.append((conn, path))
        return conn

    def stop(self) -> None:
        """Stop tracing (flushing each trace): call before the connections close."""
        for conn, _ in self._traced:
            if not conn.closed:
                conn.pgconn.untrace()

    def sent(self, transactions: bool = False) -> list[list[dt.datetime]]:
        """When each traced connection sent each statement (local time, as libpq stamps it), or each BEGIN of a
        transaction; the traces removed."""
        sent = []
        for _, path in self._traced:
            with open(path, encoding="utf-8", errors="replace") as trace:
                line = self._BEGIN if transactions else self._LINE
                sent.append([dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")
                             for m in line.finditer(trace.read())])
            os.unlink(path)
        return sent

    def statements(self, start: dt.datetime, end: dt.datetime, transactions: bool = False) -> list[int]:
        """Statements (or transactions) each traced connection sent between `start` and `end`."""
        return [sum(1 for stamp in stamps if start <= stamp < end) for stamps in self.sent(transactions)]


def measure(url: str, workers: int = WORKERS, hold_s: float = HOLD_S, call_s: float = CALL_S) -> dict[str, Any]:
    """The figures, on the database at `url` (migrated, no other traffic)."""
    holders_go = threading.Event()
    holding = threading.Semaphore(0)
    in_flight = peak_in_flight = 0
    served: list[float] = []
    lock = threading.Lock()
    wire = WireLog(url)

    def hold() -> None:
        pacer = Pacer(lambda: psycopg.connect(url, autocommit=True))
        with pacer.call(TENANT):
            holding.release()
            holders_go.wait(hold_s + 60)
        pacer.close()

    def wait(pacer: Pacer) -> None:
        nonlocal in_flight, peak_in_flight
        with pacer.call(TENANT):
            with lock:
                in_flight += 1
                peak_in_flight = max(peak_in_flight, in_flight)
            time.sleep(call_s)
            with lock:
                in_flight -= 1
                served.append(time.monotonic())

    holders = [threading.Thread(target=hold) for _ in range(SLOTS)]
    for thread in holders:
        thread.start()
    for _ in range(SLOTS):
        if not holding.acquire(timeout=30):
            raise RuntimeError("a holder never got its slot")
    held_since = time.monotonic()
    pacers = [Pacer(wire.connect) for _ in range(workers)]
    waiters = [threading.Thread(target=wait, args=(pacer,)) for pacer in pacers]
    for thread in waiters:
        thread.start()
    time.sleep(SETTLE_S)
    window_start = dt.datetime.now()
    time.sleep(max(1.0, hold_s - (time.monotonic() - held_since)))
    window_end = dt.datetime.now()
    released = time.monotonic()
    holders_go.set()
    for thread in holders + waiters:
        thread.join(hold_s + 120)
    wire.stop()
    for pacer in pacers:
        pacer.close()
    if len(served) != workers:
        raise RuntimeError(f"only {len(served)} of {workers} waiting workers got a slot")

    window_s = (window_end - window_start).total_seconds()
    seconds = int(window_s)
    per_second: list[Counter[int]] = []  # per worker: statements in each whole second of the window
    for stamps in wire.sent():
        per_second.append(Counter(int((stamp - window_start).total_seconds()) for stamp in stamps
                                  if window_start <= stamp < window_start + dt.timedelta(seconds=seconds)))
    each = [sum(counts.values()) for counts in per_second]
    all_waiters = Counter()
    for counts in per_second:
        all_waiters.update(counts)
    return {
        "astute_xero": os.path.dirname(astute_xero.__file__),
        "waiting_workers": workers,
        "slots": SLOTS,
        "held_s": hold_s,
        "window_s": round(float(seconds), 1),
        "mean_queries_per_s_per_worker": round(sum(each) / workers / seconds, 3),
        "peak_queries_per_s_per_worker": max((max(c.values(), default=0) for c in per_second), default=0),
        "peak_queries_per_s_all_waiters": max(all_waiters.values(), default=0),
        "target_per_worker": TARGET_PER_WORKER,
        "handover_s": round(max(served) - released - (workers / SLOTS) * call_s, 2),  # beyond the calls themselves
        "peak_in_flight": peak_in_flight,
    }


def run() -> dict[str, Any]:
    """Measure on a database of its own on ASTUTE_DB_URL's server (or an embedded PostgreSQL), dropped after."""
    server = astute_db.server_url()
    name = f"bench_waiting_{uuid.uuid4().hex[:8]}"
    url = astute_db.create_database(server, name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            astute_db.load_astute_schema(conn)
            apply_migrations(conn)
        return measure(url)
    finally:
        astute_db.drop_database(server, name)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
