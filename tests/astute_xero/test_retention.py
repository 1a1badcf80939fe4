"""Retention on a real PostgreSQL: old runs' work rows go, the rest stays; the API log is archived safely."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import gzip
import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from astute_xero.operations import retention
from astute_xero.operations.migrations import apply_migrations
from devtools import astute_db
from tests.conftest import REPO_ROOT

UTC = dt.timezone.utc
WORK_TABLES = ("run_document", "validation_issue", "export_chunk")
ARCHIVE_COLUMNS = ["id", "run_id", "tenant_id", "method", "endpoint", "chunk_no", "item_count", "http_status",
                   "started_at", "duration_ms", "idempotency_key", "rate_limits", "outcome", "error"]


@pytest.fixture
def state(db: psycopg.Connection) -> psycopg.Connection:
    apply_migrations(db)
    return db


def add_run(db: psycopg.Connection, *, status: str, finished_days_ago: float | None,
            documents: int = 4, issues: int = 2, chunks: int = 2) -> int:
    """An export run with its summary rows and work rows, finished that many days ago (None: not finished)."""
    (run_id,) = db.execute(
        "INSERT INTO xero_sync.export_run (kind, dag_id, airflow_run_id, status, started_at, finished_at) "
        "VALUES ('export', 'xero_invoice_export', gen_random_uuid()::text, %(status)s, "
        "        now() - make_interval(days => 400), now() - make_interval(secs => %(ago)s * 86400)) RETURNING run_id",
        {"status": status, "ago": finished_days_ago},
    ).fetchone()
    db.execute("INSERT INTO xero_sync.run_entity (run_id, billing_entity_id, entity_name, tenant_id, decision) "
               "VALUES (%s, 1, 'Entity', 't1', 'export')", (run_id,))
    db.execute("INSERT INTO xero_sync.run_document (run_id, kind, document_id, billing_entity_id, tenant_id, customer_id, stage) "
               "SELECT %s, 'invoice', n, 1, 't1', 7, 'ready' FROM generate_series(1, %s) n", (run_id, documents))
    db.execute("INSERT INTO xero_sync.validation_issue (run_id, kind, document_id, rule, message) "
               "SELECT %s, 'invoice', n, 'rule', 'message' FROM generate_series(1, %s) n", (run_id, issues))
    db.execute("INSERT INTO xero_sync.export_chunk (run_id, tenant_id, chunk_no, document_count, estimated_bytes, kind) "
               "SELECT %s, 't1', n, 2, 1000, 'invoice' FROM generate_series(1, %s) n", (run_id, chunks))
    db.execute("INSERT INTO xero_sync.api_log (run_id, method, endpoint, started_at, duration_ms) "
               "VALUES (%s, 'PUT', 'Invoices', now(), 5)", (run_id,))
    return run_id


def work_rows(db: psycopg.Connection, run_id: int) -> tuple[int, ...]:
    return tuple(db.execute(f"SELECT count(*) FROM xero_sync.{table} WHERE run_id = %s", (run_id,)).fetchone()[0]
                 for table in WORK_TABLES)


def count(db: psycopg.Connection, table: str) -> int:
    return db.execute(f"SELECT count(*) FROM xero_sync.{table}").fetchone()[0]


def test_purge_deletes_the_work_rows_of_runs_finished_before_the_retention_and_nothing_else(state):
    old_sent = add_run(state, status="sent", finished_days_ago=120, documents=5, issues=3, chunks=2)
    old_failed = add_run(state, status="failed", finished_days_ago=91, documents=2, issues=1, chunks=1)
    recent = add_run(state, status="sent", finished_days_ago=89)
    never_finished = add_run(state, status="running", finished_days_ago=None)
    # A run started again (a cleared first task) is 'running': never purged, whatever its timestamps say.
    running_again = add_run(state, status="running", finished_days_ago=200)

    result = retention.purge_work_rows(state, 90)

    assert (result.runs, result.run_documents, result.validation_issues, result.export_chunks) == (2, 7, 4, 3)
    assert work_rows(state, old_sent) == (0, 0, 0)
    assert work_rows(state, old_failed) == (0, 0, 0)
    for kept in (recent, never_finished, running_again):
        assert work_rows(state, kept) == (4, 2, 2), f"run {kept} is within retention or still running"
    assert count(state, "export_run") == 5, "the run summaries stay"
    assert count(state, "run_entity") == 5, "the report's recent runs read run_entity"
    assert count(state, "api_log") == 5, "the audit trail is never purged"

    again = retention.purge_work_rows(state, 90)
    assert again.runs == 0 and "nothing purged" in again.describe()


def test_purge_works_through_every_batch(state):
    old = [add_run(state, status="sent", finished_days_ago=40 + n) for n in range(5)]
    recent = add_run(state, status="nothing_to_send", finished_days_ago=1)

    result = retention.purge_work_rows(state, 30, batch_runs=2)

    assert result.runs == 5 and result.run_documents == 20
    assert [work_rows(state, run_id) for run_id in old] == [(0, 0, 0)] * 5
    assert work_rows(state, recent) == (4, 2, 2)


def test_purge_refuses_less_than_a_day(state):
    run_id = add_run(state, status="sent", finished_days_ago=5)
    for days in (0, -1):
        with pytest.raises(ValueError, match="at least 1"):
            retention.purge_work_rows(state, days)
    assert work_rows(state, run_id) == (4, 2, 2)


def add_call(db: psycopg.Connection, started_at: dt.datetime, *, error: str | None = None,
             outcome: dict | None = None) -> int:
    (log_id,) = db.execute(
        "INSERT INTO xero_sync.api_log (run_id, tenant_id, method, endpoint, chunk_no, item_count, http_status, "
        "started_at, duration_ms, rate_limits, outcome, error) "
        "VALUES (3, 't1', 'PUT', 'Invoices', 1, 2, 400, %s, 250, %s, %s, %s) RETURNING id",
        (started_at, json.dumps({"min_remaining": 59}), json.dumps(outcome) if outcome else None, error),
    ).fetchone()
    return log_id


def api_log_ids(db: psycopg.Connection) -> list[int]:
    return [row[0] for row in db.execute("SELECT id FROM xero_sync.api_log ORDER BY id")]


def read_archive(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as text:
        return list(csv.reader(text))


def test_archive_writes_exactly_the_older_rows_then_deletes_them(state, tmp_path):
    before = dt.date(2026, 6, 1)
    tricky = 'Xero said: "Contact, name" is\ntaken'
    old = [
        add_call(state, dt.datetime(2026, 5, 2, 8, 0, tzinfo=UTC), error=tricky, outcome={"AU-1": "failed"}),
        add_call(state, dt.datetime(2026, 5, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        # 09:59 on 1 June in Sydney is still 31 May in UTC: the archive date is a UTC date.
        add_call(state, dt.datetime(2026, 6, 1, 9, 59, tzinfo=dt.timezone(dt.timedelta(hours=10)))),
    ]
    later = [add_call(state, dt.datetime(2026, 6, 1, 0, 0, tzinfo=UTC)),
             add_call(state, dt.datetime(2026, 7, 1, 12, 0, tzinfo=UTC))]
    directory = tmp_path / "not" / "yet" / "there"

    result = retention.archive_api_log(state, before, directory)

    assert result.rows == 3
    archive = Path(result.path.path)
    assert archive.parent == directory and archive.name == f"api_log_before_2026-06-01_ids_{old[0]}-{old[-1]}.csv.gz"
    assert sorted(p.name for p in directory.iterdir()) == [archive.name], "no partial file is left behind"
    header, *rows = read_archive(archive)
    assert header == ARCHIVE_COLUMNS
    assert [int(row[0]) for row in rows] == old
    first = dict(zip(header, rows[0]))
    assert first["error"] == tricky
    assert json.loads(first["outcome"]) == {"AU-1": "failed"}
    assert dt.datetime.fromisoformat(first["started_at"]) == dt.datetime(2026, 5, 2, 8, 0, tzinfo=UTC)
    assert first["started_at"].endswith("+00"), "archived timestamps are in UTC"
    assert (first["http_status"], first["duration_ms"], first["tenant_id"]) == ("400", "250", "t1")
    assert api_log_ids(state) == later

    nothing = retention.archive_api_log(state, before, directory)
    assert (nothing.path, nothing.rows) == (None, 0)
    assert len(list(directory.iterdir())) == 1, "an archive of nothing writes no file"


def test_an_archive_that_cannot_be_written_deletes_nothing(state, tmp_path):
    for day in range(1, 6):
        add_call(state, dt.datetime(2026, 5, day, tzinfo=UTC))
    ids = api_log_ids(state)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")

    with pytest.raises(retention.ArchiveError, match="Nothing was archived or deleted"):
        retention.archive_api_log(state, dt.date(2026, 6, 1), blocker / "archive")

    assert api_log_ids(state) == ids


def test_an_archive_whose_write_fails_half_way_deletes_nothing_and_leaves_no_file(state, tmp_path):
    # Enough incompressible rows that the file outgrows the limit set below while COPY is streaming.
    state.execute(
        "INSERT INTO xero_sync.api_log (method, endpoint, started_at, duration_ms, error) "
        "SELECT 'GET', 'Contacts', timestamptz '2026-05-01 00:00Z' + make_interval(secs => n), 10, "
        "       md5(n::text) || md5((n * 7)::text) || md5((n * 13)::text) FROM generate_series(1, 20000) n")
    ids = api_log_ids(state)
    directory = tmp_path / "archive"
    directory.mkdir()
    # A real write failure in the middle of the file (as on a full disk): files may not outgrow 64 KiB,
    # and the write past that fails with EFBIG instead of the signal ending the process.
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, limits[1]))
    try:
        with pytest.raises(retention.ArchiveError, match="File too large.*Nothing was deleted"):
            retention.archive_api_log(state, dt.date(2026, 6, 1), directory)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous_handler)

    assert api_log_ids(state) == ids
    assert list(directory.iterdir()) == [], "the half-written file is removed"
    assert retention.archive_api_log(state, dt.date(2026, 6, 1), directory).rows == 20000, "a retry then succeeds"


def test_an_archive_date_in_the_future_is_refused(state, tmp_path):
    add_call(state, dt.datetime(2026, 5, 1, tzinfo=UTC))
    ids = api_log_ids(state)
    with pytest.raises(ValueError, match="in the future"):
        retention.archive_api_log(state, dt.date(2026, 6, 2), tmp_path, today=dt.date(2026, 6, 1))
    assert api_log_ids(state) == ids
    assert list(tmp_path.iterdir()) == []


def test_retention_days_default_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("XERO_SYNC_RETENTION_DAYS", raising=False)
    assert retention.retention_days_default() == 90
    monkeypatch.setenv("XERO_SYNC_RETENTION_DAYS", "30")
    assert retention.retention_days_default() == 30
    for wrong in ("0", "ninety", "-5"):
        monkeypatch.setenv("XERO_SYNC_RETENTION_DAYS", wrong)
        with pytest.raises(ValueError, match="XERO_SYNC_RETENTION_DAYS"):
            retention.retention_days_default()


def test_the_archive_location_is_a_directory_or_any_object_storage_url(monkeypatch, tmp_path):
    monkeypatch.delenv("XERO_ARCHIVE_DIR", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert str(retention.archive_location()) == f"file://{tmp_path}/archive"
    monkeypatch.setenv("XERO_ARCHIVE_DIR", str(tmp_path / "elsewhere"))  # a directory, as before
    assert str(retention.archive_location()) == f"file://{tmp_path}/elsewhere"
    monkeypatch.setenv("XERO_ARCHIVE_DIR", "s3://aws_archive@audit-bucket/xero/api_log/")  # conn id, bucket, prefix
    location = retention.archive_location()
    assert (location.protocol, location.conn_id, location.bucket, location.key) == (
        "s3", "aws_archive", "audit-bucket", "xero/api_log")


def archived_rows(location) -> list[list[str]]:
    """Every data row of every archive in the location (an ObjectStoragePath), file by file."""
    rows = []
    for archive in sorted(location.iterdir(), key=lambda path: path.name):
        with archive.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8", newline="") as text:
            header, *data = csv.reader(text)
            assert header == ARCHIVE_COLUMNS
            rows += data
    return rows


def test_the_archive_goes_to_an_object_storage_path_and_is_read_back_before_the_rows_go(state):
    """Any place Airflow's object storage writes (a bucket, a shared volume): here fsspec's in-memory
    filesystem, attached as Airflow attaches a store, written and read back through ObjectStoragePath."""
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    location = ObjectStoragePath("memory://audit-bucket/xero/api_log")
    old = [add_call(state, dt.datetime(2026, 5, day, tzinfo=UTC)) for day in (2, 3, 4)]
    later = add_call(state, dt.datetime(2026, 6, 2, tzinfo=UTC))

    result = retention.archive_api_log(state, dt.date(2026, 6, 1), location)

    assert result.rows == 3 and str(result.path).startswith("memory://audit-bucket/xero/api_log/api_log_before_2026-06-01_")
    assert [path.name for path in location.iterdir()] == [result.path.name], "no partial object is left behind"
    assert [int(row[0]) for row in archived_rows(location)] == old
    assert api_log_ids(state) == [later]
    for path in location.iterdir():
        path.unlink()


def test_a_worker_killed_between_the_archive_and_the_delete_loses_nothing_and_its_rerun_duplicates_nothing(
        state, database_url, tmp_path):
    """The archive's transaction is open while the file is written: a worker killed after the write and
    before the commit leaves every row in api_log, and a file. The rerun must neither lose the rows nor
    archive them a second time beside that file."""
    from airflow.sdk import ObjectStoragePath

    old = [add_call(state, dt.datetime(2026, 5, day, tzinfo=UTC)) for day in range(1, 6)]
    later = add_call(state, dt.datetime(2026, 6, 2, tzinfo=UTC))
    directory = tmp_path / "archive"  # XERO_ARCHIVE_DIR as a plain directory, as before
    # The DELETE after the write stalls, as a worker would that dies at that moment.
    state.execute("CREATE FUNCTION public.stall_archive_delete() RETURNS trigger LANGUAGE plpgsql "
                  "AS $$ BEGIN PERFORM pg_sleep(300); RETURN NULL; END $$")
    state.execute("CREATE TRIGGER stall_archive_delete BEFORE DELETE ON xero_sync.api_log "
                  "FOR EACH STATEMENT EXECUTE FUNCTION public.stall_archive_delete()")
    worker = subprocess.Popen([sys.executable, "-c", (
        "import datetime as dt, psycopg\n"
        "from astute_xero.operations import retention\n"
        f"with psycopg.connect({database_url!r}, autocommit=True) as conn:\n"
        f"    retention.archive_api_log(conn, dt.date(2026, 6, 1), {str(directory)!r})\n")])
    try:
        deadline = time.monotonic() + 120
        while not (stalled := state.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'"
        ).fetchall()):
            assert worker.poll() is None and time.monotonic() < deadline, "the archive never reached its DELETE"
            time.sleep(0.2)
    finally:
        worker.kill()
        worker.wait()
    # The dead worker's connection is dropped (as PostgreSQL does once it notices): its transaction rolls back.
    for (pid,) in stalled:
        state.execute("SELECT pg_terminate_backend(%s)", (pid,))
    while state.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' "
                        "AND datname = current_database()").fetchone()[0]:
        time.sleep(0.1)
    state.execute("DROP TRIGGER stall_archive_delete ON xero_sync.api_log")
    assert api_log_ids(state) == old + [later], "nothing is lost: the rows are still in api_log"
    assert len(list(directory.iterdir())) == 1, "the killed worker's archive was written"

    result = retention.archive_api_log(state, dt.date(2026, 6, 1), str(directory))

    assert result.rows == 5 and api_log_ids(state) == [later]
    location = ObjectStoragePath(f"file://{directory}")
    assert [int(row[0]) for row in archived_rows(location)] == old, "each archived row in exactly one archive"


def test_the_tasks_fail_without_retry_on_bad_input(state, database_url, monkeypatch, tmp_path):
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    monkeypatch.setenv("AIRFLOW_CONN_ASTUTE_DB", astute_db.airflow_connection_json(database_url))
    monkeypatch.setenv("XERO_ARCHIVE_DIR", str(tmp_path))
    run_id = add_run(state, status="sent", finished_days_ago=5)
    with pytest.raises(AirflowFailException, match="at least 1"):
        retention.purge_work_rows_task({"retention_days": 0})
    assert work_rows(state, run_id) == (4, 2, 2)
    tomorrow = dt.datetime.now(UTC).date() + dt.timedelta(days=1)
    with pytest.raises(AirflowFailException, match="in the future"):
        retention.archive_api_log_task({"archive_api_log_before": tomorrow.isoformat()})
    with pytest.raises(AirflowFailException, match="YYYY-MM-DD"):
        retention.archive_api_log_task({"archive_api_log_before": "last May"})
    with pytest.raises(AirflowSkipException):
        retention.archive_api_log_task({"archive_api_log_before": None})
    assert count(state, "api_log") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.e2e
def test_the_housekeeping_dag_purges_and_archives(state, database_url, airflow_home, monkeypatch, tmp_path):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.state import DagRunState

    monkeypatch.setenv("AIRFLOW_CONN_ASTUTE_DB", astute_db.airflow_connection_json(database_url))
    monkeypatch.setenv("XERO_ARCHIVE_DIR", str(tmp_path))
    old = add_run(state, status="sent", finished_days_ago=45)
    recent = add_run(state, status="sent", finished_days_ago=2)
    state.execute("UPDATE xero_sync.api_log SET started_at = timestamptz '2026-01-15 10:00Z' WHERE run_id = %s", (old,))
    dag = DagBag(dag_folder=str(REPO_ROOT / "dags"), known_pools={"xero_api"}).dags["xero_housekeeping"]
    params = copy.deepcopy(dag.params), {t.task_id: copy.deepcopy(t.params) for t in dag.tasks}
    try:
        dag_run = dag.test(run_conf={"retention_days": 30, "archive_api_log_before": "2026-02-01"})
    finally:  # dag.test writes the conf into the Param objects; restore them (see tests/dags/conftest.py)
        dag.params = params[0]
        for task in dag.tasks:
            task.params = params[1][task.task_id]

    assert dag_run.state == DagRunState.SUCCESS
    assert work_rows(state, old) == (0, 0, 0)
    assert work_rows(state, recent) == (4, 2, 2)
    (archive,) = tmp_path.iterdir()
    header, *rows = read_archive(archive)
    assert header == ARCHIVE_COLUMNS and [int(row[1]) for row in rows] == [old]
    assert [row[0] for row in state.execute("SELECT run_id FROM xero_sync.api_log")] == [recent]
