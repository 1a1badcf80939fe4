"""A real Airflow 3 deployment on this machine, as subprocesses: for the benchmarks and the cluster test.

    with AirflowDeployment(parallelism=24, pools={"xero_api": 50},
                           env={"AIRFLOW_CONN_ASTUTE_DB": …, "AIRFLOW_CONN_XERO_DEFAULT": …}) as airflow:
        airflow.unpause("xero_invoice_export")
        run_id = airflow.trigger("xero_invoice_export", {"date_to": "2026-06-30"})
        run = airflow.wait_for_run("xero_invoice_export", run_id, timeout_s=600)
        tasks = airflow.task_instances("xero_invoice_export", run_id)

What `dags test` is not: the api-server (the execution API the tasks talk to), the scheduler with
the LocalExecutor running `parallelism` tasks at once, the dag-processor and the triggerer, each its
own process, sharing one metadata database in PostgreSQL (a fresh database on the server
`devtools.astute_db.server_url()` gives), one Fernet key and one JWT secret. Dags and plugins are
this repository's. Every process started is stopped on leaving the `with` block, whatever
happened (an exception, Ctrl-C); their logs stay in `home/logs/` and the path is printed when
something failed.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, IO

import psycopg
from cryptography.fernet import Fernet
from psycopg import conninfo
from psycopg.rows import dict_row

from devtools import astute_db

REPO_ROOT = astute_db.REPO_ROOT
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
FINISHED_RUN_STATES = ("success", "failed")


class DeploymentError(RuntimeError):
    """The deployment did not come up or a command failed; the message says where the logs are."""


@dataclass(frozen=True)
class DagRunRecord:
    run_id: str
    run_type: str
    state: str
    queued_at: dt.datetime | None
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    conf: dict[str, Any] | None


@dataclass(frozen=True)
class TaskInstanceRecord:
    """One task instance as the metadata database has it (its latest try)."""

    ti_id: str
    run_id: str
    task_id: str
    map_index: int
    label: str | None  # the rendered map index (map_index_template)
    state: str | None
    try_number: int
    scheduled: dt.datetime | None  # when the scheduler made it runnable
    queued: dt.datetime | None  # when it was handed to the executor
    start: dt.datetime | None
    end: dt.datetime | None
    duration_s: float | None
    pool: str
    hostname: str | None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sqlalchemy_url(libpq_url: str, driver: str = "psycopg2") -> str:
    """A SQLAlchemy URL (`postgresql+<driver>://…`) for a libpq URL or conninfo string, unix sockets included."""
    from sqlalchemy.engine import URL

    params = conninfo.conninfo_to_dict(libpq_url)
    host = params.get("host") or None
    socket_dir = host if host and host.startswith("/") else None
    url = URL.create(
        f"postgresql+{driver}",
        username=params.get("user"),
        password=params.get("password") or None,
        host=None if socket_dir else host,
        port=int(params["port"]) if params.get("port") and not socket_dir else None,
        database=params.get("dbname"),
        query={"host": socket_dir, **({"port": str(params["port"])} if params.get("port") else {})} if socket_dir else {},
    )
    return url.render_as_string(hide_password=False)


class AirflowDeployment:
    """Airflow's four long-running components on loopback, with LocalExecutor (or CeleryExecutor and
    `celery_workers` workers `worker-1`, `worker-2`, … on `broker_url`). Use as a context manager.

    `parallelism`: task slots of the LocalExecutor ([core] parallelism; also max active tasks per DAG).
    `pools`: pool name -> slots, set before the scheduler starts. `env`: extra environment for every
    process (connections as AIRFLOW_CONN_*, AIRFLOW__… settings). `home`: AIRFLOW_HOME (default a new
    temporary directory, kept afterwards for its logs unless `remove_home`). `database`: the name of
    the metadata database to (re)create on the server; dropped on stop unless `keep_database`.
    `users`: username -> role (viewer, user, op, admin) of Airflow's SimpleAuthManager, which then asks
    for a login and refuses anyone else (`password(username)` is what it generated); default: no
    login, everyone is admin.
    """

    def __init__(
        self,
        *,
        parallelism: int = 16,
        pools: dict[str, int] | None = None,
        env: dict[str, str] | None = None,
        home: Path | None = None,
        database: str | None = None,
        server_url: str | None = None,
        api_workers: int = 1,
        triggerer: bool = True,
        keep_database: bool = False,
        remove_home: bool = False,
        startup_timeout_s: float = 180.0,
        users: dict[str, str] | None = None,
        celery_workers: int = 0,
        broker_url: str | None = None,
        worker_concurrency: int = 8,
    ) -> None:
        self.parallelism = parallelism
        self.pools = dict(pools or {})
        self.extra_env = dict(env or {})
        self.home = Path(home) if home else Path(tempfile.mkdtemp(prefix="airflow-deployment-"))
        self.database = database or f"airflow_meta_{secrets.token_hex(4)}"
        self._server_url = server_url
        self.api_workers = api_workers
        self.components = COMPONENTS if triggerer else tuple(c for c in COMPONENTS if c != "triggerer")
        self.keep_database = keep_database
        self.remove_home = remove_home
        self.startup_timeout_s = startup_timeout_s
        self.users = dict(users or {})
        if celery_workers and not broker_url:
            raise ValueError("celery_workers need a broker_url (redis://…)")
        self.celery_workers = celery_workers
        self.broker_url = broker_url
        self.worker_concurrency = worker_concurrency
        self.workers = tuple(f"worker-{n}" for n in range(1, celery_workers + 1))
        self.killed: set[str] = set()  # components stopped on purpose (kill()), not failures
        self.api_port = 0
        self.metadata_url = ""  # libpq
        self.env: dict[str, str] = {}
        self._processes: dict[str, subprocess.Popen] = {}
        self._log_files: dict[str, IO[bytes]] = {}
        self._started = False
        self._failed = False
        self._previous_sigterm: Any = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "AirflowDeployment":
        try:
            self.start()
        except BaseException:
            self._failed = True
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self._failed = True
        self.stop()

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        atexit.register(self.stop)
        # A SIGTERM (a CI job cancelled, `timeout`) becomes SystemExit, so the `with` block still stops everything.
        self._previous_sigterm = None
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            self._previous_sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        server = self._server_url or astute_db.server_url()
        self.metadata_url = astute_db.create_database(server, self.database)
        self.api_port = free_port()
        base_url = f"http://127.0.0.1:{self.api_port}"
        python_path = os.pathsep.join(
            [str(REPO_ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
        )
        self.env = {
            **os.environ,
            "PYTHONPATH": python_path,
            "GX_ANALYTICS_ENABLED": "false",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor" if self.celery_workers else "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(self.parallelism),
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",  # as docker-compose.yaml: see there
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(self.metadata_url, "psycopg2"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": sqlalchemy_url(self.metadata_url, "asyncpg"),
            # PostgreSQL's 100 connections are shared with the Astute database the tasks use.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "7",
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__WORKERS": str(self.api_workers),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            # Task logs are served by the scheduler's (and triggerer's) log server: ports of our own.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            **self._auth_env(),
            **self._celery_env(),
            **self.extra_env,
        }
        self.airflow("db", "migrate", timeout_s=600)
        for name, slots in self.pools.items():
            self.airflow("pools", "set", name, str(slots), f"{name} (set by the deployment)")
        for component in self.components:
            self._spawn(component)
        for worker in self.workers:
            self._spawn(worker)
        self._wait_for_health()

    def _auth_env(self) -> dict[str, str]:
        if not self.users:
            return {}
        return {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in self.users.items()),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "simple_auth_manager_passwords.json")}

    def _celery_env(self) -> dict[str, str]:
        if not self.celery_workers:
            return {}
        return {"AIRFLOW__CELERY__BROKER_URL": self.broker_url or "",
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + sqlalchemy_url(self.metadata_url, "psycopg2"),
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
                # Each worker names the task instances it runs (task_instance.hostname): see worker_hostname().
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "devtools.airflow_deployment.worker_hostname"}

    def kill(self, component: str) -> None:
        """SIGKILL a component and everything it started (a Celery worker's pool and task processes), as a
        machine that dies would: nothing is told, nothing cleans up."""
        self.killed.add(component)
        _signal_group(self._processes[component], signal.SIGKILL)
        self._processes[component].wait(timeout=30)

    def password(self, username: str) -> str:
        """The password the SimpleAuthManager generated for one of `users` (the API server writes them at start)."""
        passwords = json.loads((self.home / "simple_auth_manager_passwords.json").read_text(encoding="utf-8"))
        return passwords[username]

    def stop(self) -> None:
        """Stop every process started here (SIGTERM to its process group, SIGKILL after 30 s). Idempotent."""
        if not self._started:
            return
        self._started = False
        for name, process in reversed(list(self._processes.items())):
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for name, process in self._processes.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process, signal.SIGKILL)  # stragglers: task processes, executor workers
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                print(f"airflow {name} (pid {process.pid}) did not exit after SIGKILL", file=sys.stderr)
        for handle in self._log_files.values():
            handle.close()
        self._processes.clear()
        self._log_files.clear()
        if not self.keep_database and self.metadata_url:
            try:
                astute_db.drop_database(self._server_url or astute_db.server_url(), self.database)
            except psycopg.Error as error:
                print(f"could not drop the metadata database {self.database}: {error}", file=sys.stderr)
        if self._failed:
            self.print_log_locations()
        elif self.remove_home:
            shutil.rmtree(self.home, ignore_errors=True)
        atexit.unregister(self.stop)
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    def print_log_locations(self) -> None:
        print(f"Airflow deployment logs (AIRFLOW_HOME {self.home}):", file=sys.stderr)
        for component in (*self.components, *self.workers):
            print(f"  {component}: {self.logs_dir / (component + '.log')}", file=sys.stderr)
        print(f"  tasks: {self.logs_dir}/dag_id=*/run_id=*/task_id=*/", file=sys.stderr)

    def check_alive(self) -> None:
        """Raise if a component has exited."""
        for name, process in self._processes.items():
            if process.poll() is not None and name not in self.killed:
                self._failed = True
                raise DeploymentError(f"airflow {name} exited with {process.returncode}; its log: "
                                      f"{self.logs_dir / (name + '.log')}")

    # ------------------------------------------------------------------ commands
    def airflow(self, *args: str, timeout_s: float = 300.0) -> str:
        """Run an `airflow` CLI command in this deployment's environment; return its stdout."""
        result = subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env, capture_output=True,
                                text=True, timeout=timeout_s, check=False, cwd=self.home)
        with open(self.logs_dir / "cli.log", "a", encoding="utf-8") as log:
            log.write(f"$ airflow {' '.join(args)}\n{result.stdout}{result.stderr}\n")
        if result.returncode != 0:
            self._failed = True
            raise DeploymentError(f"airflow {' '.join(args)} failed (exit {result.returncode}):\n"
                                  f"{(result.stdout + result.stderr)[-3000:]}")
        return result.stdout

    def wait_for_dag(self, dag_id: str, timeout_s: float = 180.0) -> None:
        """Until the dag-processor has parsed and stored the DAG (an import error fails at once)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._metadata() as conn:
                row = conn.execute("SELECT dag_id FROM dag WHERE dag_id = %s AND NOT is_stale", (dag_id,)).fetchone()
                errors = conn.execute("SELECT filename, stacktrace FROM import_error").fetchall()
            if errors:
                self._failed = True
                raise DeploymentError("import errors in the dags folder:\n" +
                                      "\n".join(f"{e['filename']}:\n{e['stacktrace']}" for e in errors))
            if row:
                return
            self.check_alive()
            if time.monotonic() > deadline:
                self._failed = True
                raise DeploymentError(f"DAG {dag_id} not parsed within {timeout_s:g} s; see the dag-processor log")
            time.sleep(1)

    def unpause(self, dag_id: str) -> None:
        self.wait_for_dag(dag_id)
        self.airflow("dags", "unpause", dag_id)

    def set_pool(self, name: str, slots: int) -> None:
        self.airflow("pools", "set", name, str(slots), f"{name} (set by the deployment)")
        self.pools[name] = slots

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, run_id: str | None = None) -> str:
        """Trigger a run (CLI) and return its run id."""
        run_id = run_id or f"bench__{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}_{secrets.token_hex(3)}"
        self.airflow("dags", "trigger", dag_id, "--run-id", run_id, "--conf", json.dumps(conf or {}))
        return run_id

    # ------------------------------------------------------------------ observing
    def dag_runs(self, dag_id: str) -> list[DagRunRecord]:
        with self._metadata() as conn:
            rows = conn.execute(
                "SELECT run_id, run_type, state, queued_at, start_date, end_date, conf FROM dag_run "
                "WHERE dag_id = %s ORDER BY coalesce(start_date, queued_at), id", (dag_id,)
            ).fetchall()
        return [DagRunRecord(r["run_id"], r["run_type"], r["state"], r["queued_at"], r["start_date"], r["end_date"],
                             _json(r["conf"])) for r in rows]

    def wait_for_run(self, dag_id: str, run_id: str, timeout_s: float, poll_s: float = 2.0) -> DagRunRecord:
        """Poll until the run is success or failed; raise DeploymentError on timeout or a dead component."""
        deadline = time.monotonic() + timeout_s
        while True:
            run = next((r for r in self.dag_runs(dag_id) if r.run_id == run_id), None)
            if run and run.state in FINISHED_RUN_STATES:
                return run
            self.check_alive()
            if time.monotonic() > deadline:
                self._failed = True
                raise DeploymentError(f"run {run_id} of {dag_id} still {run.state if run else 'absent'} "
                                      f"after {timeout_s:g} s")
            time.sleep(poll_s)

    def wait_until_idle(self, dag_id: str, timeout_s: float, settle_s: float = 10.0, poll_s: float = 2.0) -> bool:
        """Poll until no run of the DAG is queued or running, and none appeared for `settle_s` (a run may
        trigger the next). True when idle, False when `timeout_s` passed first (nothing is raised)."""
        deadline = time.monotonic() + timeout_s
        idle_since: float | None = None
        while time.monotonic() < deadline:
            active = [r for r in self.dag_runs(dag_id) if r.state not in FINISHED_RUN_STATES]
            self.check_alive()
            if active:
                idle_since = None
            else:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= settle_s:
                    return True
            time.sleep(poll_s)
        return False

    def task_instances(self, dag_id: str, run_id: str | None = None) -> list[TaskInstanceRecord]:
        with self._metadata() as conn:
            rows = conn.execute(
                "SELECT id::text AS ti_id, run_id, task_id, map_index, rendered_map_index, state, try_number, scheduled_dttm, "
                "queued_dttm, start_date, end_date, duration, pool, hostname FROM task_instance "
                "WHERE dag_id = %s AND (%s::text IS NULL OR run_id = %s) ORDER BY start_date NULLS LAST, task_id, map_index",
                (dag_id, run_id, run_id),
            ).fetchall()
        return [TaskInstanceRecord(r["ti_id"], r["run_id"], r["task_id"], r["map_index"], r["rendered_map_index"], r["state"],
                                   r["try_number"], r["scheduled_dttm"], r["queued_dttm"], r["start_date"], r["end_date"],
                                   r["duration"], r["pool"], r["hostname"]) for r in rows]

    def task_tries(self, dag_id: str) -> list[dict[str, Any]]:
        """Earlier tries of retried task instances (task_instance_history), for counting retries."""
        with self._metadata() as conn:
            return conn.execute(
                "SELECT run_id, task_id, map_index, try_number, state, start_date, end_date, duration "
                "FROM task_instance_history WHERE dag_id = %s ORDER BY start_date", (dag_id,)
            ).fetchall()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) each component has used so far, with its exited children (executor
        workers and task processes are the scheduler's): where a benchmark's CPU went. Linux only."""
        tick = os.sysconf("SC_CLK_TCK")
        used: dict[str, float] = {}
        for name, process in self._processes.items():
            pids = [process.pid] + _descendants(process.pid)
            total = 0.0
            for pid in pids:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                # utime, stime, cutime, cstime are fields 14-17 of /proc/<pid>/stat (after pid and comm).
                total += sum(int(v) for v in fields[11:15]) / tick
            used[name] = round(total, 1)
        return used

    def workload_durations(self) -> dict[str, float]:
        """Task instance id -> seconds its LocalExecutor worker spent on it (fork, DAG parse, run, report),
        from the scheduler's log: compare with the task instance's own duration for the worker overhead."""
        found: dict[str, float] = {}
        path = self.logs_dir / "scheduler.log"
        if not path.exists():
            return found
        pattern = re.compile(r"Workload finished.*?duration=([0-9.]+).*?workload_id=([0-9a-f-]+)")
        with open(path, encoding="utf-8", errors="replace") as log:
            for line in log:
                if "Workload finished" in line and (match := pattern.search(line)):
                    found[match.group(2)] = float(match.group(1))
        return found

    def xcom_returns(self, dag_id: str, task_ids: tuple[str, ...]) -> list[Any]:
        """The return values (XCom) of these tasks' instances, every run and map index."""
        with self._metadata() as conn:
            rows = conn.execute("SELECT value FROM xcom WHERE dag_id = %s AND task_id = ANY(%s) AND key = 'return_value'",
                                (dag_id, list(task_ids))).fetchall()
        return [json.loads(row["value"]) if isinstance(row["value"], str) else row["value"] for row in rows]

    def _metadata(self) -> psycopg.Connection:
        return psycopg.connect(self.metadata_url, autocommit=True, row_factory=dict_row)

    # ------------------------------------------------------------------ internals
    def _spawn(self, component: str) -> None:
        log = open(self.logs_dir / f"{component}.log", "ab")
        self._log_files[component] = log
        args = [sys.executable, "-m", "airflow", component]
        env = self.env
        if component == "api-server":
            args += ["--host", "127.0.0.1", "--port", str(self.api_port), "--workers", str(self.api_workers)]
        elif component in self.workers:
            args = [sys.executable, "-m", "airflow", "celery", "worker", "--celery-hostname", f"{component}@%h",
                    "--concurrency", str(self.worker_concurrency), "--skip-serve-logs"]
            env = {**self.env, WORKER_NAME_VARIABLE: component}
        # A session of its own: stop() signals the whole group (executor workers, task processes).
        self._processes[component] = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                                      stdin=subprocess.DEVNULL, cwd=self.home, start_new_session=True)

    def _wait_for_health(self) -> None:
        """Until the API answers and reports the scheduler, the dag-processor (and triggerer) healthy."""
        deadline = time.monotonic() + self.startup_timeout_s
        wanted = {"metadatabase", "scheduler", "dag_processor"} | ({"triggerer"} if "triggerer" in self.components else set())
        last: Any = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health", timeout=5) as r:
                    last = json.load(r)
                if all((last.get(part) or {}).get("status") == "healthy" for part in wanted):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError) as error:
                last = repr(error)
            time.sleep(1)
        self._failed = True
        raise DeploymentError(f"Airflow not healthy within {self.startup_timeout_s:g} s; last health answer: {last}")


WORKER_NAME_VARIABLE = "AIRFLOW_DEPLOYMENT_WORKER"


def worker_hostname() -> str:
    """[core] hostname_callable of a deployment with Celery workers: the worker's name (worker-1, …) beside the
    machine's, so that task_instance.hostname tells which of the workers on this one machine ran a task."""
    name = os.environ.get(WORKER_NAME_VARIABLE)
    return f"{socket.getfqdn()}:{name}" if name else socket.getfqdn()


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _descendants(pid: int) -> list[int]:
    """Every live descendant of a process (from /proc), so their CPU is counted while they run."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # the group this Popen leads (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass


def _json(value: Any) -> Any:
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode("utf-8", "replace")
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return None
