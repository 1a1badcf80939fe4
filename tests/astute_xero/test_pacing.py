"""The shared call budget, on a real PostgreSQL, with workers in threads (each its own connection)."""

from __future__ import annotations

import datetime as dt
import threading
import time

import psycopg
import pytest

from astute_xero.migrations import apply_migrations
from astute_xero.pacing import Pacer


@pytest.fixture
def pacer_for(db: psycopg.Connection, database_url: str):
    apply_migrations(db)

    def make(**kwargs) -> Pacer:
        return Pacer(lambda: psycopg.connect(database_url, autocommit=True), **kwargs)

    return make


def run_workers(pacers: list[Pacer], calls_each: int, tenant: str, hold_s: float = 0.0) -> tuple[list[float], int]:
    starts: list[float] = []
    in_flight = peak = 0
    lock = threading.Lock()

    def worker(pacer: Pacer) -> None:
        nonlocal in_flight, peak
        for _ in range(calls_each):
            with pacer.call(tenant):
                with lock:
                    starts.append(time.monotonic())
                    in_flight += 1
                    peak = max(peak, in_flight)
                time.sleep(hold_s)
                with lock:
                    in_flight -= 1

    threads = [threading.Thread(target=worker, args=(p,)) for p in pacers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return sorted(starts), peak


def test_workers_share_one_budget_per_window(pacer_for):
    window = dt.timedelta(seconds=1)
    pacers = [pacer_for(per_minute=5, window=window) for _ in range(4)]
    starts, _ = run_workers(pacers, 3, "org-a")  # 12 calls, 5 per window: at least 3 windows
    assert len(starts) == 12
    assert starts[-1] - starts[0] >= 2 * window.total_seconds() * 0.9
    # No window of one second ever held more than 5 calls.
    for i, first in enumerate(starts):
        assert sum(1 for s in starts[i:] if s - first < 0.95) <= 5


def test_no_more_calls_in_flight_than_the_concurrency_limit(pacer_for):
    pacers = [pacer_for(concurrent=2) for _ in range(6)]
    _, peak = run_workers(pacers, 2, "org-b", hold_s=0.1)
    assert peak == 2


def test_organisations_do_not_share_budgets(pacer_for):
    pacer = pacer_for(per_minute=2, window=dt.timedelta(seconds=30))
    started = time.monotonic()
    for tenant in ("x", "x", "y", "y"):
        with pacer.call(tenant):
            pass
    assert time.monotonic() - started < 1


def test_a_429_blocks_every_worker_until_retry_after(pacer_for):
    first, second = pacer_for(), pacer_for()
    first.block("org-c", 1.0)
    started = time.monotonic()
    with second.call("org-c"):
        pass
    assert time.monotonic() - started >= 0.9
    assert second.waited_s >= 0.9
