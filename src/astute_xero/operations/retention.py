"""Retention of the pipeline's own state: old runs' work rows are purged, the API log is archived by date.

A run's work rows (`run_document`, `validation_issue`, `export_chunk`) only explain that run; they are
purged once the run finished more than a configurable number of days ago. What is kept: the run's
summary (`export_run`, `run_entity`: the report lists recent runs from them), the export flags (what
went to Xero), and `api_log`, the audit trail, which is never purged: it is archived, on request, to a
gzip-compressed CSV file, and only the rows safely on disk are then deleted.

The domain functions take a connection and import no Airflow; the housekeeping DAG's task bodies are at
the end of the module.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import logging
import os
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from astute_xero.sql import load_sql

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 90
# Runs per transaction: a run of the bench (200,000 invoices) is 200,000 work rows, so a batch stays
# a few million rows at most, and a purge never holds one long transaction over years of runs.
PURGE_BATCH_RUNS = 100


@dataclass(frozen=True)
class PurgeResult:
    cutoff: dt.datetime
    runs: int
    run_documents: int
    validation_issues: int
    export_chunks: int

    def describe(self) -> str:
        if not self.runs:
            return f"Retention: no run finished before {self.cutoff:%Y-%m-%d %H:%M %Z} holds work rows; nothing purged."
        return (
            f"Retention: purged the work rows of {self.runs} run(s) finished before {self.cutoff:%Y-%m-%d %H:%M %Z}: "
            f"{self.run_documents} run_document, {self.validation_issues} validation_issue and "
            f"{self.export_chunks} export_chunk row(s). Their export_run rows, the export flags and api_log are kept."
        )


def purge_work_rows(
    conn: psycopg.Connection, older_than_days: int, *, batch_runs: int = PURGE_BATCH_RUNS
) -> PurgeResult:
    """Delete the work rows of runs that finished more than `older_than_days` days ago.

    A run still 'running' is never touched, however old. Each batch of runs is one statement in one
    transaction, so an interrupted purge keeps what it did and the next one carries on. `conn` is an
    autocommit connection (as hooks.astute_connection gives).
    """
    if isinstance(older_than_days, bool) or not isinstance(older_than_days, int) or older_than_days < 1:
        raise ValueError(f"retention_days must be a whole number of days, at least 1, not {older_than_days!r}.")
    if batch_runs < 1:
        raise ValueError(f"batch_runs must be at least 1, not {batch_runs!r}.")
    (cutoff,) = conn.execute(load_sql("retention_purge_cutoff"), {"older_than_days": older_than_days}).fetchone()
    runs = documents = issues = chunks = 0
    after_run_id = 0
    while True:
        with conn.transaction():
            batch, last_run_id, batch_documents, batch_issues, batch_chunks = conn.execute(
                load_sql("retention_purge_batch"),
                {"cutoff": cutoff, "after_run_id": after_run_id, "batch_size": batch_runs},
            ).fetchone()
        if not batch:
            break
        runs, documents, issues, chunks = runs + batch, documents + batch_documents, issues + batch_issues, chunks + batch_chunks
        after_run_id = last_run_id
    return PurgeResult(cutoff, runs, documents, issues, chunks)


@dataclass(frozen=True)
class ArchiveResult:
    before: dt.date
    path: Path | None  # None when no row was old enough: no file is written
    rows: int

    def describe(self) -> str:
        if self.path is None:
            return f"API log archive: no call started before {self.before} (UTC); nothing archived."
        return (f"API log archive: {self.rows} call(s) started before {self.before} (UTC) written to {self.path} "
                "and deleted from xero_sync.api_log.")


class ArchiveError(RuntimeError):
    """The archive could not be completed; nothing was deleted from api_log (unless the message says otherwise)."""


def archive_file_name(before: dt.date, now: dt.datetime) -> str:
    """api_log_before_<date>_<UTC timestamp>.csv.gz: sorted by date, and never the name of an earlier archive."""
    return f"api_log_before_{before.isoformat()}_{now.astimezone(dt.timezone.utc):%Y%m%dT%H%M%S%fZ}.csv.gz"


def archive_api_log(
    conn: psycopg.Connection, before: dt.date, directory: Path, *, today: dt.date | None = None
) -> ArchiveResult:
    """Move the api_log rows of calls started before `before` (midnight UTC) into a gzip-compressed CSV file.

    One transaction: the rows are chosen, streamed with COPY into `<name>.partial`, which is fsynced and
    renamed to its final name (the directory fsynced too); only then are exactly those rows deleted. If
    anything fails before the commit, the transaction rolls back (every row stays in api_log) and the
    file is removed. Memory stays flat: COPY's blocks go straight through gzip to the file.
    """
    today = today or dt.datetime.now(dt.timezone.utc).date()
    if before > today:
        raise ValueError(f"archive date {before} is in the future (today is {today}, UTC): "
                         "only calls already made can be archived.")
    cutoff = dt.datetime.combine(before, dt.time.min, tzinfo=dt.timezone.utc)
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ArchiveError(f"cannot use archive directory {directory}: {error}. Nothing was archived or deleted.") from error
    final = directory / archive_file_name(before, dt.datetime.now(dt.timezone.utc))
    partial = final.with_name(final.name + ".partial")
    body_done = False
    try:
        with conn.transaction():
            conn.execute(load_sql("retention_archive_prepare"))
            selected = conn.execute(load_sql("retention_archive_select"), {"before": cutoff}).rowcount
            if selected == 0:
                return ArchiveResult(before, None, 0)
            written = _copy_to_gzip_csv(conn, partial, csv_name=final.name.removesuffix(".gz"))
            if written != selected:
                raise ArchiveError(f"COPY wrote {written} row(s) of the {selected} chosen; nothing deleted.")
            os.replace(partial, final)
            _fsync_directory(directory)
            deleted = conn.execute(load_sql("retention_archive_delete")).rowcount
            if deleted != written:  # someone deleted archived rows meanwhile: roll back rather than guess
                raise ArchiveError(f"{deleted} row(s) would be deleted but {written} were archived; nothing deleted.")
            body_done = True
    except BaseException as error:
        partial.unlink(missing_ok=True)
        if not body_done:  # rolled back: every row is still in api_log, so the file is only a duplicate
            final.unlink(missing_ok=True)
            if isinstance(error, OSError):
                raise ArchiveError(f"writing the archive {final} failed: {error}. Nothing was deleted from api_log.") from error
            raise
        # The COMMIT itself failed: whether the rows were deleted is unknown, so the file (fsynced) is kept.
        raise ArchiveError(f"the archive {final} is written but the deletion's commit failed ({error}); "
                           "the file is kept: check which of its rows are still in xero_sync.api_log.") from error
    return ArchiveResult(before, final, written)


def _copy_to_gzip_csv(conn: psycopg.Connection, path: Path, *, csv_name: str) -> int:
    """Stream the chosen api_log rows into a new gzip file, fsynced; return the rows COPY wrote."""
    with open(path, "xb") as raw:
        with gzip.GzipFile(filename=csv_name, mode="wb", fileobj=raw, compresslevel=6) as compressed:
            with conn.cursor() as cursor:
                with cursor.copy(load_sql("retention_archive_copy")) as copy:
                    for block in copy:
                        compressed.write(block)
                written = cursor.rowcount
        raw.flush()
        os.fsync(raw.fileno())
    return written


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable: a file's name lives in its directory."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# The housekeeping DAG's tasks (dags/xero_housekeeping.py): connections in, domain calls, small results
# out. Airflow is imported inside them, so that the functions above stay plain Python for the tests.

def retention_days_default() -> int:
    """XERO_SYNC_RETENTION_DAYS, else 90: the trigger form's default, read when the DAG is parsed."""
    configured = os.environ.get("XERO_SYNC_RETENTION_DAYS", "").strip()
    if not configured:
        return DEFAULT_RETENTION_DAYS
    if not configured.isdigit() or int(configured) < 1:
        raise ValueError(f"XERO_SYNC_RETENTION_DAYS must be a whole number of days, at least 1, not {configured!r}.")
    return int(configured)


def archive_directory() -> Path:
    """Where api_log archives go: XERO_ARCHIVE_DIR, else $AIRFLOW_HOME/archive."""
    configured = os.environ.get("XERO_ARCHIVE_DIR")
    return Path(configured) if configured else Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "archive"


def apply_migrations_task() -> list[str]:
    from astute_xero.hooks import astute_connection
    from astute_xero.operations.migrations import apply_migrations

    with closing(astute_connection()) as conn:
        applied = apply_migrations(conn)
    log.info("xero_sync migrations applied: %s", ", ".join(applied) if applied else "none needed")
    return applied


def purge_work_rows_task(params: dict[str, Any]) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowFailException

    from astute_xero.hooks import astute_connection

    days = params.get("retention_days")
    if isinstance(days, str) and days.strip().isdigit():
        days = int(days)
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise AirflowFailException(f"retention_days must be a whole number of days, at least 1, not {days!r}.")
    with closing(astute_connection()) as conn:
        result = purge_work_rows(conn, days)
    log.info("%s", result.describe())
    return {**dataclasses.asdict(result), "cutoff": result.cutoff.isoformat()}


def archive_api_log_task(params: dict[str, Any]) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from astute_xero.hooks import astute_connection

    given = params.get("archive_api_log_before")
    if not given:
        raise AirflowSkipException("archive_api_log_before is empty: the API log is not archived in this run.")
    try:
        before = dt.date.fromisoformat(str(given))
    except ValueError:
        raise AirflowFailException(f"archive_api_log_before must be a date (YYYY-MM-DD), not {given!r}.") from None
    with closing(astute_connection()) as conn:
        try:
            result = archive_api_log(conn, before, archive_directory())
        except (ValueError, ArchiveError) as error:
            raise AirflowFailException(str(error)) from None
    log.info("%s", result.describe())
    return {"before": before.isoformat(), "path": str(result.path) if result.path else None, "rows": result.rows}
