"""Throughput at the bound: does the export, run by a real Airflow, use what Xero's limits allow?

For each scenario: the Xero sandbox with realistic latency (a PUT of 100 invoices about 2.5 s) and
Xero's limits scaled down in time (a shorter "minute" and "day", the same in the sandbox and in the
pacer through the xero_default connection's extra "limits"), Astute data in PostgreSQL, and
`xero_invoice_export` run by an Airflow deployment of its own (api-server, scheduler with the
LocalExecutor's parallel task slots, dag-processor, triggerer; devtools/airflow_deployment.py).

* A, one organisation with a backlog of several (scaled) days: the day limit binds. Runs continue
  the backlog by themselves (each run triggers the next while there is backlog); the scenario ends
  when the backlog is delivered, Airflow is idle, or its time is up.
* B, many organisations with a few chunks each: the concurrency and minute limits bind.
* C, three organisations of 4,000 invoices at Xero's own limits, as deployed: the whole run (Contacts,
  chart, chunks, allocation, summary) and its chunk phase against the least time Xero's limits allow.

Figures per scenario: invoices delivered per window divided by what Xero's limits allow in that
window (target >= 0.9); 429s per organisation per window (target <= 1); the peak number of calls in
progress per organisation; and what Airflow adds per mapped chunk task (scheduled -> queued ->
started, the worker's fork/parse/report time, the task's time outside its Xero call).

    python -m devtools.bench_throughput [A] [B] [C]    # environment: BENCH_PARALLELISM, BENCH_KEEP_HOME,
                                                       # BENCH_CELERY_WORKERS (0: LocalExecutor; 2: the cluster)
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg

from devtools import astute_db
from devtools.airflow_deployment import AirflowDeployment, TaskInstanceRecord
from devtools.astute_data import AstuteData, Line
from devtools.loopback_services import postgres_server_url, redis_broker
from devtools.xero_setup import airflow_connection_json, authorise_app
from xero_sandbox import XeroSandbox

DAG_ID = "xero_invoice_export"
CHUNK_TASKS = ("export_invoice_chunks", "export_credit_note_chunks")  # one lane of chunks each
INVOICES_PER_CHUNK = 100
DATABASE = "astute_xero_bench_throughput"
GO_LIVE = dt.date(2026, 1, 1)
INVOICE_DATE = dt.date(2026, 6, 1)
# Xero's answer times, as observed: a PUT of 100 invoices takes about 2-3 s; Contacts and reads less.
LATENCY_S = {"/api.xro/2.0/": 0.3, "/api.xro/2.0/Contacts": 0.8,
             "/api.xro/2.0/Invoices": 2.5, "/api.xro/2.0/CreditNotes": 2.5}
# The sandbox answers within seconds even under load: a call not answered in 30 s is lost.
BENCH_TIMEOUTS = {"read_timeout_s": 30, "late_commit_margin_s": 5}
TARGET_RATIO = 0.9
TARGET_429_PER_WINDOW = 1
TARGET_CPU_PER_CHUNK_S = 0.1  # every process's CPU (Airflow's and ours) over the chunk phase, per chunk


@dataclass(frozen=True)
class ScaledLimits:
    """Xero's limits with shorter windows; the same in the sandbox and in the connection's extra."""

    per_minute: int = 60
    per_day: int = 5000
    concurrent: int = 5
    app_per_minute: int = 10000
    minute_s: float = 60.0
    day_s: float = 86400.0

    def extra(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    organisations: int
    chunks_per_organisation: int  # the backlog, in chunks of 100 invoices
    limits: ScaledLimits
    window: str  # which window the ratio is counted in: "minute" or "day"
    invoices_per_customer: int = 5
    lines_per_invoice: int = 3
    time_limit_s: float = 600.0  # from unpausing to giving up on the backlog
    pool_slots: int | None = None  # default: 5 per organisation (README), at most the parallelism

    @property
    def window_s(self) -> float:
        return self.limits.day_s if self.window == "day" else self.limits.minute_s

    @property
    def invoices(self) -> int:
        return self.organisations * self.chunks_per_organisation * INVOICES_PER_CHUNK


def scenarios() -> dict[str, Scenario]:
    # A: one organisation; the day binds. Xero's minute rate (1 call a second: 6 per 6 s) and a "day" of
    # 200 s that allows 100 calls, so a day's calls go in under two minutes and the organisation then waits
    # for the next day. Backlog: 250 chunks, 2.5 days of calls. Pool: 10 (5 calls at Xero, 5 tasks in
    # Airflow's own steps around them).
    a = Scenario(
        "A", "1 organisation, backlog of 2.5 (scaled) days: the day limit binds", organisations=1,
        chunks_per_organisation=250, window="day", invoices_per_customer=125,
        limits=ScaledLimits(per_minute=6, per_day=100, minute_s=6.0, day_s=200.0), time_limit_s=900.0,
    )
    # B: 50 organisations with 3 chunks each, at Xero's own limits (5 calls at once, 60 a minute): Xero would
    # take every organisation's chunks within seconds, in parallel. What a real minute-window allows 50
    # organisations (50 x 60 calls) is far beyond what this machine's Airflow can start, so the ratio
    # shows what bounds the export when many organisations go at once.
    b = Scenario(
        "B", "50 organisations, 3 chunks each: Xero's concurrency and minute limits", organisations=50,
        chunks_per_organisation=3, window="minute", invoices_per_customer=20,
        limits=ScaledLimits(per_minute=60, per_day=5000, minute_s=60.0, day_s=86400.0), time_limit_s=720.0,
    )
    # C: the deployed run of issue 22: 3 organisations, 12,000 invoices (40 chunks each), Xero's own limits and
    # latency, LocalExecutor with parallelism 16. The minute binds the chunks (60 calls a minute per organisation);
    # the Contacts (one per 5 invoices) and the chart come first, as in a first export.
    c = Scenario(
        "C", "3 organisations, 12,000 invoices, deployed: the whole run against Xero's bound", organisations=3,
        chunks_per_organisation=40, window="minute", invoices_per_customer=50,
        limits=ScaledLimits(per_minute=60, per_day=5000, minute_s=60.0, day_s=86400.0), time_limit_s=900.0,
    )
    # Not a target: how fast this machine's Airflow takes chunks when no limit binds.
    calibrate = Scenario(
        "CAL", "calibration: 10 organisations, no limit binds", organisations=10, chunks_per_organisation=8,
        window="minute", invoices_per_customer=16,
        limits=ScaledLimits(per_minute=10000, per_day=100000, minute_s=60.0), time_limit_s=400.0,
    )
    return {"A": a, "B": b, "C": c, "CAL": calibrate}


# --------------------------------------------------------------------------------------------- set-up
def load_astute(url: str, scenario: Scenario, tenants: list[str]) -> None:
    lines = [Line(), Line(description="Overtime", quantity=Decimal("4.5000"), unit_amount=Decimal("78.5625")),
             Line(description="Allowance", quantity=Decimal("1"), unit_amount=Decimal("12.3456"), account_code="260")]
    with psycopg.connect(url, autocommit=True) as conn:
        astute_db.load_astute_schema(conn)
        data = AstuteData(conn)
        data.regions()
        per_org = scenario.chunks_per_organisation * INVOICES_PER_CHUNK
        customers_per_org = max(1, math.ceil(per_org / scenario.invoices_per_customer))
        for o, tenant in enumerate(tenants):
            entity = data.entity(f"Org {o + 1:02d}", tenant_id=tenant, go_live=GO_LIVE)
            customers = [data.customer(f"Org {o + 1:02d} Customer {c + 1:04d}") for c in range(customers_per_org)]
            for n in range(per_org):
                data.invoice(entity, customers[n % customers_per_org], number=f"O{o + 1:02d}-{n + 1:06d}",
                             invoice_date=INVOICE_DATE + dt.timedelta(days=n % 90),
                             lines=lines[: scenario.lines_per_invoice])
            data.flush()
        conn.execute("VACUUM ANALYZE")


def set_up_sandbox(sandbox: XeroSandbox, scenario: Scenario) -> list[str]:
    backend = sandbox.backend
    backend.reset()
    for name, value in dataclasses.asdict(scenario.limits).items():
        setattr(backend.limits, name, value)
    for prefix, seconds in LATENCY_S.items():
        backend.faults.latency(seconds, path_prefix=prefix)
    return [backend.add_tenant(f"Org {o + 1:02d}") for o in range(scenario.organisations)]


def xero_connection(app: Any, sandbox_url: str, limits: ScaledLimits) -> str:
    connection = json.loads(airflow_connection_json(app, sandbox_url, limits=limits.extra()))
    connection["extra"].update(BENCH_TIMEOUTS)
    return json.dumps(connection)


# --------------------------------------------------------------------------------------------- a run
def run_scenario(scenario: Scenario, parallelism: int, keep_home: bool = False, celery_workers: int = 0) -> dict[str, Any]:
    """`celery_workers`: 0, Airflow's LocalExecutor; else a CeleryExecutor cluster as `make test-cluster` runs it
    (the machine's PostgreSQL and Redis on loopback, else its own), that many workers of parallelism // workers
    task slots each."""
    executor = f"CeleryExecutor, {celery_workers} workers" if celery_workers else "LocalExecutor"
    print(f"\n=== Scenario {scenario.name} ({executor}): {scenario.title}", flush=True)
    sandbox = XeroSandbox.start(host="127.0.0.1", port=0)
    try:
        tenants = set_up_sandbox(sandbox, scenario)
        app = authorise_app(sandbox.backend, tenants)
        url = astute_db.create_database(astute_db.server_url(), DATABASE)
        print(f"  loading {scenario.invoices:,} invoices for {scenario.organisations} organisation(s) ...", flush=True)
        load_astute(url, scenario, tenants)
        pool = scenario.pool_slots or min(parallelism, 5 * scenario.organisations)  # README: 5 per organisation
        env = {
            "AIRFLOW_CONN_ASTUTE_DB": astute_db.airflow_connection_json(url),
            "AIRFLOW_CONN_XERO_DEFAULT": xero_connection(app, sandbox.url, scenario.limits),
        }
        print(f"  starting Airflow ({executor}, parallelism {parallelism}, pool xero_api {pool}) ...", flush=True)
        with contextlib.ExitStack() as stack:
            cluster: dict[str, Any] = {}
            if celery_workers:
                cluster = {"server_url": postgres_server_url(), "celery_workers": celery_workers,
                           "broker_url": stack.enter_context(redis_broker()),
                           "worker_concurrency": max(1, parallelism // celery_workers)}
            airflow = stack.enter_context(AirflowDeployment(parallelism=parallelism, pools={"xero_api": pool}, env=env,
                                                            **cluster))
            airflow.wait_for_dag(DAG_ID)
            sandbox.backend.rate_limiter.reset()  # count from the benchmark's start only
            cpu_before, own_before = airflow.cpu_seconds(), _own_cpu()
            # Unpausing starts the DAG's scheduled run (its data interval ends today, after every invoice's
            # date), as in production: one run, no manual trigger beside it doing the same work twice.
            airflow.unpause(DAG_ID)
            unpaused = time.time()
            print(f"  unpaused; waiting for the backlog (at most {scenario.time_limit_s:.0f} s) ...", flush=True)
            cpu_samples: list[tuple[float, float]] = []  # (time, Airflow's CPU seconds so far), every second
            finished = wait_for_backlog(airflow, sandbox, tenants, scenario, unpaused, cpu_samples)
            elapsed = time.time() - unpaused
            cpu_after, own_after = airflow.cpu_seconds(), _own_cpu()
            cpu = {name: round(cpu_after[name] - cpu_before.get(name, 0.0), 1) for name in cpu_after}
            cpu["bench process (sandbox)"] = round(own_after - own_before, 1)
            tis = airflow.task_instances(DAG_ID)
            lane_results = airflow.xcom_returns(DAG_ID, CHUNK_TASKS)
            phases = task_phases(airflow.logs_dir, [ti for ti in tis if ti.task_id in CHUNK_TASKS and ti.map_index >= 0])
            stages = stage_times(tis)
            runs = airflow.dag_runs(DAG_ID)
            workloads = airflow.workload_durations()
            home = airflow.home
            with psycopg.connect(url, autocommit=True) as conn:
                api_log = conn.execute(
                    "SELECT r.airflow_run_id, l.tenant_id, l.method, l.endpoint, l.chunk_no, l.item_count, l.http_status, "
                    "l.started_at, l.duration_ms FROM xero_sync.api_log l "
                    "LEFT JOIN xero_sync.export_run r ON r.run_id = l.run_id ORDER BY l.started_at"
                ).fetchall()
                entity_tenants = dict(conn.execute("SELECT name, xero_tenant_id FROM astute.billing_entity").fetchall())
        figures = measure(scenario, sandbox, tenants, tis, runs, workloads, api_log, entity_tenants, unpaused, elapsed)
        figures.update(cost_per_chunk(cpu, cpu_samples, api_log, lane_results))
        chunks_done = max(1, figures["chunk_tasks"])
        figures.update(executor=executor, parallelism=parallelism, pool_slots=pool, finished=finished, airflow_home=str(home),
                       latency_s=LATENCY_S, limits=dataclasses.asdict(scenario.limits), cpu_s=cpu,
                       cpu_s_per_chunk_task=round(sum(cpu.values()) / chunks_done, 2),
                       chunk_task_phases_s=phases, stage_s=stages, cores=os.cpu_count())
        if not keep_home:
            import shutil
            shutil.rmtree(home, ignore_errors=True)
            figures["airflow_home"] = None
        return figures
    finally:
        sandbox.stop()
        try:
            astute_db.drop_database(astute_db.server_url(), DATABASE)
        except psycopg.Error:
            pass


def delivered(sandbox: XeroSandbox, tenants: list[str]) -> int:
    return sum(sandbox.backend.document_count(t) for t in tenants)


def wait_for_backlog(airflow: AirflowDeployment, sandbox: XeroSandbox, tenants: list[str], scenario: Scenario,
                     since: float, cpu_samples: list[tuple[float, float]]) -> bool:
    """Until every invoice is in Xero and Airflow is idle, or the scenario's time is up; Airflow's CPU (every
    process: scheduler, its task processes, api-server, dag-processor, triggerer) sampled every second."""
    last_report = last_check = 0.0
    while True:
        now = time.time()
        cpu_samples.append((now, sum(airflow.cpu_seconds().values())))
        if now - last_check < 5:
            time.sleep(1)
            continue
        last_check = now
        airflow.check_alive()
        count = delivered(sandbox, tenants)
        runs = airflow.dag_runs(DAG_ID)
        active = [r for r in runs if r.state not in ("success", "failed")]
        if now - last_report >= 20:
            print(f"  {now - since:5.0f} s: {count:,}/{scenario.invoices:,} invoices in Xero; runs: "
                  f"{len(runs)} ({len(active)} active)", flush=True)
            last_report = now
        if count >= scenario.invoices and not active:
            return True
        if not active and count < scenario.invoices and runs and now - since > 60 and all(
                r.end_date and (dt.datetime.now(dt.timezone.utc) - r.end_date).total_seconds() > 30 for r in runs):
            print("  Airflow is idle with backlog left: no run continues it (continuation runs not in place?)")
            return False
        if now - since > scenario.time_limit_s:
            print(f"  time is up ({scenario.time_limit_s:.0f} s) with {scenario.invoices - count:,} invoices left")
            return False
        time.sleep(1)


# --------------------------------------------------------------------------------------------- figures
def xero_min_time(limits: ScaledLimits, calls: int, latency_s: float) -> float:
    """The least time Xero's limits let one organisation take `calls` calls of `latency_s` each, from its first:
    at most `concurrent` in progress, `per_minute` in each minute window and `per_day` in each day window
    (fixed windows from the first call, as the sandbox counts them)."""
    t, ends, last = 0.0, [], 0.0
    minutes: dict[int, int] = defaultdict(int)
    days: dict[int, int] = defaultdict(int)
    for _ in range(calls):
        while True:
            ends = [e for e in ends if e > t]
            if len(ends) >= limits.concurrent:
                t = min(ends)
                continue
            minute, day = int(t // limits.minute_s), int(t // limits.day_s)
            if days[day] >= limits.per_day:
                t = (day + 1) * limits.day_s
                continue
            if minutes[minute] >= limits.per_minute:
                t = (minute + 1) * limits.minute_s
                continue
            break
        minutes[minute] += 1
        days[day] += 1
        ends.append(t + latency_s)
        last = max(last, t + latency_s)
    return last


def window_calls_allowed(limits: ScaledLimits, window_s: float, latency_s: float) -> int:
    """Calls one organisation's limits allow within one window of `window_s` seconds (from its start)."""
    calls = 0
    while xero_min_time(limits, calls + 1, latency_s) - latency_s < window_s and calls < 10**6:
        calls += 1
    return calls


def measure(scenario: Scenario, sandbox: XeroSandbox, tenants: list[str], tis: list[TaskInstanceRecord], runs: list,
            workloads: dict[str, float], api_log: list[tuple], entity_tenants: dict[str, str], unpaused: float,
            elapsed: float) -> dict[str, Any]:
    backend = sandbox.backend
    latency = LATENCY_S["/api.xro/2.0/Invoices"]
    window_s = scenario.window_s
    per_org_backlog = scenario.chunks_per_organisation * INVOICES_PER_CHUNK
    accounting = [r for r in backend.requests if r.path.startswith("/api.xro/2.0/") and r.tenant_id in tenants]
    t0 = min((r.started for r in accounting), default=unpaused)  # Xero's budgets are there from the first call
    deliveries: dict[str, list[tuple[float, int]]] = defaultdict(list)  # tenant -> (answered at, invoices created)
    for _, tenant, method, endpoint, _, items, status, started, duration_ms in api_log:
        if method == "PUT" and endpoint == "Invoices" and status == 200:
            deliveries[tenant].append((started.timestamp() + duration_ms / 1000, items))
    t_end = max((end for ds in deliveries.values() for end, _ in ds), default=t0)
    actual_s = max(1e-9, t_end - t0)
    min_s = xero_min_time(scenario.limits, scenario.chunks_per_organisation, latency)
    allowed_per_window = window_calls_allowed(scenario.limits, window_s, latency)
    n_windows = max(1, math.ceil(actual_s / window_s - 1e-9))

    # Per organisation and window (a grid from t0): invoices delivered / what the limits allowed of what was left.
    window_ratios: list[list[float]] = [[] for _ in range(n_windows)]
    minute_grid = max(1, math.ceil(actual_s / scenario.limits.minute_s))
    refusals = backend.rate_limit_refusals()
    worst_minute_429 = worst_window_429 = 0
    per_org: dict[str, dict[str, Any]] = {}
    for t in tenants:
        remaining = per_org_backlog
        ratios = []
        for w in range(n_windows):
            lo, hi = t0 + w * window_s, t0 + (w + 1) * window_s
            got = sum(items for end, items in deliveries[t] if lo <= end < hi or (w == n_windows - 1 and end >= hi))
            allowed = min(remaining, allowed_per_window * INVOICES_PER_CHUNK)
            if allowed > 0:
                ratios.append(got / allowed)
                window_ratios[w].append(got / allowed)
            remaining = max(0, remaining - got)
        per_minute = [0] * (minute_grid + 1)
        per_window = [0] * (n_windows + 1)
        for refusal in refusals:
            if refusal.tenant_id == t:
                per_minute[min(minute_grid, max(0, int((refusal.at - t0) // scenario.limits.minute_s)))] += 1
                per_window[min(n_windows, max(0, int((refusal.at - t0) // window_s)))] += 1
        worst_minute_429 = max(worst_minute_429, max(per_minute))
        worst_window_429 = max(worst_window_429, max(per_window))
        stats = backend.call_stats(t)
        per_org[t] = {"delivered": backend.document_count(t), "window_ratios": [round(r, 3) for r in ratios],
                      "peak_in_flight": stats.peak_in_flight, "calls": stats.admitted, "refused": stats.refused,
                      "last_delivery_s": round(max((e for e, _ in deliveries[t]), default=t0) - t0, 1)}

    # Do the steps before the chunks (validation's chart reads, Contacts) call several organisations at once?
    before_chunks = [r for r in accounting if r.status != 429 and not (
        r.method == "PUT" and r.path.rstrip("/").endswith(("/Invoices", "/CreditNotes")))]
    calls_by_endpoint: dict[str, int] = defaultdict(int)
    for r in accounting:
        if r.status != 429:
            calls_by_endpoint[f"{r.method} {r.path[len('/api.xro/2.0/'):].split('/')[0]}"] += 1

    # What Airflow adds per mapped chunk task.
    http_ms: dict[tuple[str, str, int], int] = {}
    for airflow_run, tenant, method, endpoint, chunk_no, _, _, _, duration_ms in api_log:
        if method == "PUT" and endpoint in ("Invoices", "CreditNotes") and chunk_no is not None:
            http_ms[(airflow_run, tenant, chunk_no)] = http_ms.get((airflow_run, tenant, chunk_no), 0) + duration_ms
    chunk_tis = [ti for ti in tis if ti.task_id in CHUNK_TASKS and ti.map_index >= 0 and ti.start and ti.end]
    queued_delay, start_delay, outside_call, worker_extra, durations = [], [], [], [], []
    for ti in chunk_tis:
        if ti.scheduled and ti.queued:
            queued_delay.append((ti.queued - ti.scheduled).total_seconds())
        if ti.queued:
            start_delay.append((ti.start - ti.queued).total_seconds())
        durations.append(ti.duration_s or 0.0)
        key = _chunk_key(ti, entity_tenants)
        if key and key in http_ms:
            outside_call.append((ti.duration_s or 0.0) - http_ms[key] / 1000)
        if ti.ti_id in workloads and ti.duration_s is not None:
            worker_extra.append(workloads[ti.ti_id] - ti.duration_s)

    run_spans = [_seconds(r.start_date, r.end_date) for r in runs]
    # Of the runs' time, how much no task of the run was running: Airflow between one step and the next
    # (scheduling, queueing, a task process's start before its first log line).
    busy = _union_s([(ti.start, ti.end) for ti in tis if ti.start and ti.end])
    whole_run_s = sum(x for x in run_spans if x) or None
    run_bound = whole_run_bound(scenario, api_log)
    chunk_puts = sorted((started.timestamp(), started.timestamp() + duration_ms / 1000)
                        for _, _, method, endpoint, chunk_no, _, status, started, duration_ms in api_log
                        if method == "PUT" and endpoint in ("Invoices", "CreditNotes") and chunk_no is not None)
    chunk_phase_s = (chunk_puts[-1][1] - chunk_puts[0][0]) if chunk_puts else None
    mean_by_window = [round(statistics.fmean(w), 3) for w in window_ratios if w]
    full_windows = mean_by_window[:-1] if len(mean_by_window) > 1 else mean_by_window
    return {
        "scenario": scenario.name,
        "title": scenario.title,
        "organisations": scenario.organisations,
        "backlog_invoices": scenario.invoices,
        "delivered_invoices": sum(o["delivered"] for o in per_org.values()),
        "elapsed_s": round(elapsed, 1),
        "first_call_after_s": round(t0 - unpaused, 1),
        "export_span_s": round(actual_s, 1),
        "xero_min_span_s": round(min_s, 1),
        "span_ratio": round(min(1.0, min_s / actual_s), 3),
        "chunk_phase_ratio": round(min(1.0, min_s / chunk_phase_s), 3) if chunk_phase_s else None,
        "whole_run_s": whole_run_s,
        "whole_run_bound_s": round(run_bound, 1),
        "whole_run_ratio": round(min(1.0, run_bound / whole_run_s), 3) if whole_run_s else None,
        "between_steps_s": round(whole_run_s - busy, 1) if whole_run_s else None,
        "window": f"{scenario.window} ({window_s:g} s)",
        "chunk_calls_allowed_per_window": allowed_per_window,
        "window_ratio_by_window": mean_by_window,
        "window_ratio_full_windows": _mean(full_windows),
        "window_ratio_min": min((r for w in window_ratios for r in w), default=None),
        "max_429_per_org_minute": worst_minute_429,
        "max_429_per_org_window": worst_window_429,
        "refused_by_problem": _sum_dicts(o["refused"] for o in per_org.values()),
        "peak_in_flight_max": max(o["peak_in_flight"] for o in per_org.values()),
        "peak_in_flight_median": statistics.median(o["peak_in_flight"] for o in per_org.values()),
        "calls_by_endpoint": dict(sorted(calls_by_endpoint.items())),
        # The sandbox's own time on a chunk PUT beyond the latency it adds (it holds one lock per call).
        "sandbox_put_beyond_latency_s": _quantiles([r.ended - r.started - latency for r in accounting if r.method == "PUT"
                                                    and r.status == 200 and r.path.rstrip("/").endswith("/Invoices")]),
        "other_calls_peak_orgs_at_once": _peak_distinct(before_chunks),
        "other_calls_span_s": round(max((r.ended for r in before_chunks), default=t0)
                                    - min((r.started for r in before_chunks), default=t0), 1),
        "other_calls_busy_s": round(sum(r.ended - r.started for r in before_chunks), 1),
        "dag_runs": [(r.run_id, r.run_type, r.state, _seconds(r.start_date, r.end_date)) for r in runs],
        "chunk_tasks": len(chunk_tis),
        "chunk_tasks_failed_or_retried": sum(1 for ti in chunk_tis if ti.state != "success" or ti.try_number > 1),
        "peak_chunk_tasks_running": _peak_running(chunk_tis),
        "chunk_calls_per_s": round(sum(1 for ds in deliveries.values() for _ in ds) / actual_s, 3),
        "scheduled_to_queued_s": _quantiles(queued_delay),
        "queued_to_start_s": _quantiles(start_delay),
        "task_minus_xero_call_s": _quantiles(outside_call),
        "worker_overhead_s": _quantiles(worker_extra),
        "chunk_task_duration_s": _quantiles(durations),
        "per_organisation": per_org if scenario.organisations <= 3 else None,
        "last_delivery_by_org_s": _quantiles([o["last_delivery_s"] for o in per_org.values()]),
    }


def cost_per_chunk(cpu: dict[str, float], samples: list[tuple[float, float]], api_log: list[tuple],
                   lane_results: list[Any]) -> dict[str, Any]:
    """CPU per chunk: Airflow's processes and ours (every process the deployment runs) over the chunk phase
    (first chunk call to last answer, from the per-second samples) and over the whole benchmark, against the
    lanes' own CPU (what export_lane measured in its process: payloads, HTTP, write-back)."""
    chunk_calls = [(started.timestamp(), started.timestamp() + duration_ms / 1000)
                   for _, _, method, endpoint, chunk_no, _, status, started, duration_ms in api_log
                   if method == "PUT" and endpoint in ("Invoices", "CreditNotes") and chunk_no is not None]
    chunks = len(chunk_calls)
    if not chunks:
        return {}
    start, end = min(c[0] for c in chunk_calls), max(c[1] for c in chunk_calls)

    def cpu_at(moment: float) -> float:
        before = [value for at, value in samples if at <= moment]
        return before[-1] if before else (samples[0][1] if samples else 0.0)

    phase_cpu = cpu_at(end + 1) - cpu_at(start - 1)
    own_ms = sum(int(r.get("own_cpu_ms", 0)) for r in lane_results if isinstance(r, dict))
    airflow_total = sum(v for name, v in cpu.items() if not name.startswith("bench process"))
    return {
        "chunks": chunks,
        "lanes": len(lane_results),
        "chunks_per_lane": round(chunks / max(1, len(lane_results)), 1),
        "cpu_s_per_chunk_phase": round(phase_cpu / chunks, 3),
        "cpu_s_per_chunk_whole": round(airflow_total / chunks, 3),
        "own_cpu_s_per_chunk": round(own_ms / 1000 / chunks, 4),
        "chunk_phase_s": round(end - start, 1),
    }


def whole_run_bound(scenario: Scenario, api_log: list[tuple]) -> float:
    """The least time Xero's limits allow for every call the run made to the busiest organisation: its other calls
    (chart, Contacts: each with the sandbox's latency for its path), then its chunks, at its concurrency and
    minute (the steps go one after the other)."""
    def latency(endpoint: str) -> float:
        path = f"/api.xro/2.0/{endpoint}"
        matches = [(len(prefix), seconds) for prefix, seconds in LATENCY_S.items() if path.startswith(prefix)]
        return max(matches)[1] if matches else 0.3  # the longest prefix's

    other: dict[str, list[float]] = defaultdict(list)
    chunks: dict[str, int] = defaultdict(int)
    for _, tenant, method, endpoint, chunk_no, *_ in api_log:
        if method == "PUT" and endpoint in ("Invoices", "CreditNotes") and chunk_no is not None:
            chunks[tenant] += 1
        else:
            other[tenant].append(latency(endpoint))
    bound = 0.0
    for tenant in set(other) | set(chunks):
        calls = other[tenant]
        before = xero_min_time(scenario.limits, len(calls), statistics.fmean(calls)) if calls else 0.0
        bound = max(bound, before + xero_min_time(scenario.limits, chunks[tenant], LATENCY_S["/api.xro/2.0/Invoices"]))
    return bound


def task_phases(logs_dir: Any, tis: list[TaskInstanceRecord]) -> dict[str, Any]:
    """Where a chunk task's time goes, from its log: loading plugins, parsing the DAG file, the rest of
    Airflow's pre-execute, our code (execute), Airflow's post-execute (XCom, state)."""
    marks = {"plugins": "DAG bundles loaded", "parse": "Worker startup parse complete", "execute": "Done. Returned value"}
    phases: dict[str, list[float]] = defaultdict(list)
    for ti in tis:
        path = (logs_dir / f"dag_id={DAG_ID}" / f"run_id={ti.run_id}" / f"task_id={ti.task_id}"
                / f"map_index={ti.map_index}" / f"attempt={max(1, ti.try_number)}.log")
        try:
            events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
        except (OSError, ValueError):
            continue
        times = [(dt.datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")), e.get("event", "")) for e in events
                 if "timestamp" in e]
        if not times:
            continue
        first, last = times[0][0], times[-1][0]
        at = {name: next((t for t, ev in times if ev.startswith(text)), None) for name, text in marks.items()}
        pre_end = next((t for t, ev in times if ev == "::endgroup::" and at["parse"] and t >= at["parse"]), None)
        if not all(at.values()) or pre_end is None:
            continue
        phases["plugins"].append((at["plugins"] - first).total_seconds())
        phases["parse"].append((at["parse"] - at["plugins"]).total_seconds())
        phases["pre_execute_rest"].append((pre_end - at["parse"]).total_seconds())
        phases["execute"].append((at["execute"] - pre_end).total_seconds())
        phases["post_execute"].append((last - at["execute"]).total_seconds())
    return {name: _quantiles(values) for name, values in phases.items()}


def stage_times(tis: list[TaskInstanceRecord]) -> dict[str, float]:
    """Seconds each unmapped step of the export took, summed over runs (the steps before and after the chunks)."""
    total: dict[str, float] = defaultdict(float)
    for ti in tis:
        if ti.map_index < 0 and ti.duration_s is not None:
            total[ti.task_id] += ti.duration_s
    return {k: round(v, 1) for k, v in sorted(total.items(), key=lambda kv: -kv[1])}


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def _chunk_key(ti: TaskInstanceRecord, tenant_by_entity: dict[str, str]) -> tuple[str, str, int] | None:
    """The (airflow run, tenant, chunk_no) of a mapped chunk task, from its label 'Org 01 · invoices · chunk 3/12'."""
    if not ti.label or "chunk " not in ti.label:
        return None
    organisation = ti.label.split(" · ")[0]
    try:
        chunk_no = int(ti.label.rsplit("chunk ", 1)[1].split("/")[0])
    except ValueError:
        return None
    tenant = tenant_by_entity.get(organisation)
    return (ti.run_id, tenant, chunk_no) if tenant else None


def _peak_distinct(records: list[Any]) -> int:
    """The most organisations with a call in progress at the same moment."""
    events = sorted([(r.started, 1, r.tenant_id) for r in records] + [(r.ended, -1, r.tenant_id) for r in records],
                    key=lambda e: (e[0], e[1]))
    open_calls: dict[str, int] = defaultdict(int)
    peak = 0
    for _, delta, tenant in events:
        open_calls[tenant] += delta
        peak = max(peak, sum(1 for n in open_calls.values() if n > 0))
    return peak


def _union_s(intervals: list[tuple[dt.datetime, dt.datetime]]) -> float:
    """Seconds covered by at least one of the intervals."""
    total, end = 0.0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            total += (stop - start).total_seconds()
            end = stop
        elif stop > end:
            total += (stop - end).total_seconds()
            end = stop
    return total


def _peak_running(tis: list[TaskInstanceRecord]) -> int:
    events = sorted([(ti.start, 1) for ti in tis] + [(ti.end, -1) for ti in tis], key=lambda e: (e[0], e[1]))
    peak = running = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def _quantiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"median": round(statistics.median(ordered), 2), "p90": round(pick(0.9), 2),
            "max": round(ordered[-1], 2), "n": len(ordered)}


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 3) if values else None


def _sum_dicts(dicts: Any) -> dict[str, int]:
    total: dict[str, int] = defaultdict(int)
    for d in dicts:
        for k, v in d.items():
            total[k] += v
    return dict(total)


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    return round((end - start).total_seconds(), 1) if start and end else None


# --------------------------------------------------------------------------------------------- report
def target_ratios(r: dict[str, Any]) -> dict[str, float | None]:
    """The ratios held against TARGET_RATIO: A's per full day; otherwise the chunk phase and the whole run."""
    if r["window"].startswith("day"):
        return {"per full day": r["window_ratio_full_windows"]}
    return {"chunk phase": r["chunk_phase_ratio"], "whole run": r["whole_run_ratio"]}


def print_table(results: list[dict[str, Any]]) -> None:
    def cell(r: dict[str, Any], key: str) -> str:
        value = r.get(key)
        if isinstance(value, dict) and "median" in value:
            return f"median {value['median']}, p90 {value['p90']}, max {value['max']} (n={value['n']})"
        if isinstance(value, dict):
            return ", ".join(f"{k} {v}" for k, v in value.items())
        return str(value)

    rows: list[tuple[str, Any]] = [
        ("organisations", "organisations"),
        ("backlog / delivered invoices", lambda r: f"{r['backlog_invoices']:,} / {r['delivered_invoices']:,}"),
        ("executor", "executor"),
        ("cores / parallelism / xero_api pool", lambda r: f"{r['cores']} / {r['parallelism']} / {r['pool_slots']}"),
        ("limits: per minute, per day, concurrent", lambda r: "{per_minute}/{minute_s:g}s, {per_day}/{day_s:g}s, {concurrent}".format(**r["limits"])),
        ("PUT latency (s)", lambda r: r["latency_s"]["/api.xro/2.0/Invoices"]),
        ("elapsed from unpause (s)", "elapsed_s"),
        ("first Xero call after unpause (s)", "first_call_after_s"),
        ("span: first Xero call -> last chunk answered (s)", "export_span_s"),
        ("least span Xero's limits allow for the chunks (s)", "xero_min_span_s"),
        ("RATIO over the span (least / actual)", "span_ratio"),
        ("RATIO chunk phase (first chunk call -> last answer)", "chunk_phase_ratio"),
        ("whole run: runs' duration / Xero's least time (s)", lambda r: f"{r['whole_run_s']} / {r['whole_run_bound_s']}"),
        ("RATIO whole run (least / actual)", "whole_run_ratio"),
        ("  of the runs' time, no task running (s)", "between_steps_s"),
        ("chunks / lanes (chunks per lane)", lambda r: f"{r.get('chunks')} / {r.get('lanes')} ({r.get('chunks_per_lane')})"),
        ("CPU s per chunk, all processes: chunk phase / whole", lambda r: f"{r.get('cpu_s_per_chunk_phase')} / {r.get('cpu_s_per_chunk_whole')}"),
        ("CPU s per chunk, our own work (lanes)", "own_cpu_s_per_chunk"),
        ("ratio window / chunk calls allowed per window", lambda r: f"{r['window']} / {r['chunk_calls_allowed_per_window']}"),
        ("RATIO per window (delivered / allowed), by window", "window_ratio_by_window"),
        ("  mean of full windows / min (org x window)", lambda r: f"{r['window_ratio_full_windows']} / {r['window_ratio_min']}"),
        ("max 429s per org per minute / per window", lambda r: f"{r['max_429_per_org_minute']} / {r['max_429_per_org_window']}"),
        ("429s by problem", "refused_by_problem"),
        ("peak calls in flight per org (max / median)", lambda r: f"{r['peak_in_flight_max']} / {r['peak_in_flight_median']}"),
        ("lane tasks (failed or retried)", lambda r: f"{r['chunk_tasks']} ({r['chunk_tasks_failed_or_retried']})"),
        ("chunk calls answered per second (span)", "chunk_calls_per_s"),
        ("peak chunk tasks running", "peak_chunk_tasks_running"),
        ("last delivery per org, from t0 (s)", "last_delivery_by_org_s"),
        ("chunk task: scheduled -> queued (s)", "scheduled_to_queued_s"),
        ("chunk task: queued -> started (s)", "queued_to_start_s"),
        ("chunk task duration (s)", "chunk_task_duration_s"),
        ("chunk task minus its Xero call (s)", "task_minus_xero_call_s"),
        ("worker beyond the task (fork, exit) (s)", "worker_overhead_s"),
        ("sandbox time per chunk PUT beyond its latency (s)", "sandbox_put_beyond_latency_s"),
        ("CPU seconds by process", "cpu_s"),
        ("CPU seconds per chunk task (all processes)", "cpu_s_per_chunk_task"),
        ("other steps, summed over runs (s)", "stage_s"),
        ("calls by endpoint", "calls_by_endpoint"),
        ("other calls: orgs at once (peak) / span / busy (s)",
         lambda r: f"{r['other_calls_peak_orgs_at_once']} / {r['other_calls_span_s']} / {r['other_calls_busy_s']}"),
    ]
    print("\n" + "=" * 110)
    for label, key in rows:
        cells = [key(r) if callable(key) else cell(r, key) for r in results]
        print(f"{label:<52} " + " | ".join(str(c) for c in cells))
    for r in results:
        print(f"chunk task phases, scenario {r['scenario']} (from the task logs):")
        for name, q in (r.get("chunk_task_phases_s") or {}).items():
            if q:
                print(f"    {name:<18} median {q['median']} s, p90 {q['p90']} s")
    print("=" * 110)
    for r in results:
        ratios = ", ".join(f"{label} {ratio} ({'met' if ratio is not None and ratio >= TARGET_RATIO else 'MISSED'})"
                           for label, ratio in target_ratios(r).items())
        ok_429 = r["max_429_per_org_window"] <= TARGET_429_PER_WINDOW
        cpu = r.get("cpu_s_per_chunk_phase")
        ok_cpu = cpu is not None and cpu <= TARGET_CPU_PER_CHUNK_S
        print(f"Scenario {r['scenario']} ({r['title']}, {r['executor']}): {ratios}, target >= {TARGET_RATIO}; "
              f"max 429s per organisation per window {r['max_429_per_org_window']} "
              f"({'met' if ok_429 else 'MISSED'}, target <= {TARGET_429_PER_WINDOW}); CPU per chunk {cpu} s "
              f"({'met' if ok_cpu else 'MISSED'}, target <= {TARGET_CPU_PER_CHUNK_S}), our own {r.get('own_cpu_s_per_chunk')} s")
        print(f"  runs: {r['dag_runs']}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    chosen = [a.upper() for a in argv] or ["A", "B"]
    parallelism = int(os.environ.get("BENCH_PARALLELISM", "24"))
    keep_home = os.environ.get("BENCH_KEEP_HOME", "") not in ("", "0")
    celery_workers = int(os.environ.get("BENCH_CELERY_WORKERS", "0"))
    available = scenarios()
    results = [run_scenario(available[name], parallelism, keep_home, celery_workers) for name in chosen]
    print_table(results)
    return {r["scenario"]: r for r in results}


if __name__ == "__main__":
    main()
