"""Retention of the pipeline's own state: old runs' work rows are purged, the API log is archived by date.

A run's work rows (`run_document`, `validation_issue`, `export_chunk`) only explain that run; they are
purged once the run finished more than a configurable number of days ago. What is kept: the run's
summary (`export_run`, `run_entity`: the report lists recent runs from them), the export flags (what
went to Xero), and `api_log`, the audit trail, which is never purged: it is archived, on request, to a
gzip-compressed CSV file in any place Airflow's object storage writes (an `ObjectStoragePath`: a bucket,
a shared volume, a local directory), and only the rows read back from it are then deleted.

The domain functions take a connection and a location (any `ObjectStoragePath`, or a path) and import no
Airflow themselves; the housekeeping DAG's task bodies are at the end of the module.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import gzip
import io
import logging
import os
import re
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
    path: Any | None  # the archive's ObjectStoragePath; None when no row was old enough: no file is written
    rows: int
    replaced: tuple[str, ...] = ()  # files of earlier archives that never deleted their rows, replaced by this one

    def describe(self) -> str:
        if self.path is None:
            return f"API log archive: no call started before {self.before} (UTC); nothing archived."
        replaced = (f" It replaces {len(self.replaced)} file(s) of an archive whose rows were never deleted "
                    f"(a worker stopped between the write and the delete): {', '.join(self.replaced)}."
                    if self.replaced else "")
        return (f"API log archive: {self.rows} call(s) started before {self.before} (UTC) written to {self.path}, "
                f"read back, and deleted from xero_sync.api_log.{replaced}")


class ArchiveError(RuntimeError):
    """The archive could not be completed; nothing was deleted from api_log (unless the message says otherwise)."""


# api_log_before_<date>_ids_<first id>-<last id>.csv.gz: sorted by date, and named by the rows it holds. The
# first id is what tells a finished archive from one whose rows are still in api_log (retention_archive_chosen).
ARCHIVE_NAME = re.compile(r"^api_log_before_\d{4}-\d{2}-\d{2}_ids_(?P<first_id>\d+)-\d+\.csv\.gz(?:\.partial)?$")
LOCAL_PROTOCOLS = ("", "file", "local")
WRITE_BLOCK_BYTES = 1 << 20  # an object store's write is a request: blocks of 1 MiB, not COPY's few KiB


def archive_file_name(before: dt.date, first_id: int, last_id: int) -> str:
    return f"api_log_before_{before.isoformat()}_ids_{first_id}-{last_id}.csv.gz"


def as_location(location: Any):
    """An ObjectStoragePath for a location given as one, as a URL (`s3://conn_id@bucket/prefix/`,
    `file:///shared/archive/`) or as a directory path."""
    from airflow.sdk import ObjectStoragePath

    if isinstance(location, ObjectStoragePath):
        return location
    text = os.fspath(location)
    if "://" in text:
        return ObjectStoragePath(text)
    return ObjectStoragePath(f"file://{Path(text).expanduser().absolute()}")


def archive_api_log(conn: psycopg.Connection, before: dt.date, location: Any, *,
                    today: dt.date | None = None) -> ArchiveResult:
    """Move the api_log rows of calls started before `before` (midnight UTC) into a gzip-compressed CSV file
    in `location` (an ObjectStoragePath, a URL or a directory).

    One transaction, holding the archive lock: the rows are chosen, streamed with COPY into `<name>.partial`,
    read back (its size, and every row: count, first and last id), moved to its name; files of earlier
    archives whose rows were never deleted are removed (this file holds their rows); only then are exactly
    the chosen rows deleted. A failure before the commit rolls back (every row stays in api_log) and removes
    what was written. A worker killed after the write leaves its file and every row: the next archive
    replaces that file, so no row is lost or archived twice. Memory stays flat: COPY's blocks go through gzip
    to the store, and the read back streams.
    """
    today = today or dt.datetime.now(dt.timezone.utc).date()
    if before > today:
        raise ValueError(f"archive date {before} is in the future (today is {today}, UTC): "
                         "only calls already made can be archived.")
    cutoff = dt.datetime.combine(before, dt.time.min, tzinfo=dt.timezone.utc)
    location = as_location(location)
    local = location.protocol in LOCAL_PROTOCOLS
    if local:  # an object store's prefix needs no creating
        try:
            location.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ArchiveError(f"cannot use archive location {location}: {error}. Nothing was archived or deleted.") from error
    final = partial = None
    body_done = False
    try:
        with conn.transaction():
            conn.execute(load_sql("retention_archive_prepare"))
            conn.execute(load_sql("retention_archive_select"), {"before": cutoff})
            selected, first_id, last_id = conn.execute(load_sql("retention_archive_chosen")).fetchone()
            if selected == 0:
                return ArchiveResult(before, None, 0)
            final = location / archive_file_name(before, first_id, last_id)
            partial = location / (final.name + ".partial")
            written, size = _copy_to_gzip_csv(conn, partial, csv_name=final.name.removesuffix(".gz"), local=local)
            if written != selected:
                raise ArchiveError(f"COPY wrote {written} row(s) of the {selected} chosen; nothing deleted.")
            _read_back(partial, size, written, first_id, last_id)
            partial.move(final)
            if local:
                _fsync_directory(Path(location.path))
            if final.stat().st_size != size:
                raise ArchiveError(f"the archive {final} is not the {size} bytes written; nothing deleted.")
            replaced = _unfinished_archives(conn, location, keep={final.name, partial.name})
            for earlier in replaced:
                earlier.unlink()
            deleted = conn.execute(load_sql("retention_archive_delete")).rowcount
            if deleted != written:  # someone deleted archived rows meanwhile: roll back rather than guess
                raise ArchiveError(f"{deleted} row(s) would be deleted but {written} were archived; nothing deleted.")
            body_done = True
    except BaseException as error:
        if not body_done:  # rolled back: every row is still in api_log, so what was written is only a copy
            for path in (partial, final):
                _remove_quietly(path)
            if isinstance(error, OSError):
                raise ArchiveError(f"writing the archive {final} failed: {error}. Nothing was deleted from api_log.") from error
            raise
        # The COMMIT itself failed: whether the rows were deleted is unknown, so the file is kept; the next
        # archive replaces it if they were not.
        raise ArchiveError(f"the archive {final} is written but the deletion's commit failed ({error}); the file is "
                           "kept. Archive again: if its rows are still in xero_sync.api_log, the new archive "
                           "replaces it.") from error
    return ArchiveResult(before, final, written, tuple(path.name for path in replaced))


class _BlockWriter(io.RawIOBase):
    """What gzip writes to: gathers its output into blocks for the store, and counts the bytes."""

    def __init__(self, target: Any):
        self.target, self.size, self.block = target, 0, bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.block += data
        self.size += len(data)
        if len(self.block) >= WRITE_BLOCK_BYTES:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.block:
            self.target.write(bytes(self.block))
            self.block.clear()


def _copy_to_gzip_csv(conn: psycopg.Connection, path: Any, *, csv_name: str, local: bool) -> tuple[int, int]:
    """Stream the chosen api_log rows into a new gzip object; return the rows COPY wrote and its size in bytes."""
    with path.open("wb") as raw:
        blocks = _BlockWriter(raw)
        with gzip.GzipFile(filename=csv_name, mode="wb", fileobj=blocks, compresslevel=6) as compressed:
            with conn.cursor() as cursor:
                with cursor.copy(load_sql("retention_archive_copy")) as copy:
                    for block in copy:
                        compressed.write(block)
                written = cursor.rowcount
        blocks.flush()
        if local:  # on disk before the rows go
            raw.flush()
            os.fsync(raw.fileno())
    return written, blocks.size


def _read_back(path: Any, size: int, rows: int, first_id: int, last_id: int) -> None:
    """The archive as the store holds it: as many bytes as written, and every chosen row, first to last."""
    stored = path.stat().st_size
    if stored != size:
        raise ArchiveError(f"the archive {path} holds {stored} bytes, not the {size} written; nothing deleted.")
    count, first, last = 0, None, None
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8", newline="") as text:
        reader = csv.reader(text)
        next(reader, None)  # the header
        for record in reader:
            count += 1
            last = int(record[0])
            first = last if first is None else first
    if (count, first, last) != (rows, first_id, last_id):
        raise ArchiveError(f"the archive {path} read back holds {count} row(s) (ids {first} to {last}), not the "
                           f"{rows} written (ids {first_id} to {last_id}); nothing deleted.")


def _unfinished_archives(conn: psycopg.Connection, location: Any, *, keep: set[str]) -> list[Any]:
    """The files in the location of archives whose rows are still in api_log (their deletion never committed)."""
    try:
        named = {path: int(match["first_id"]) for path in location.iterdir()
                 if path.name not in keep and (match := ARCHIVE_NAME.match(path.name))}
    except FileNotFoundError:  # an object store's prefix with nothing under it yet
        return []
    if not named:
        return []
    still_there = {row[0] for row in conn.execute(load_sql("retention_archive_unfinished"),
                                                  {"first_ids": sorted(set(named.values()))})}
    return [path for path, first_id in named.items() if first_id in still_there]


def _remove_quietly(path: Any) -> None:
    if path is None:
        return
    try:
        path.unlink(missing_ok=True)
    except OSError:
        log.warning("could not remove %s (a copy of rows still in api_log; the next archive replaces it)", path)


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


def archive_location():
    """Where api_log archives go, as an ObjectStoragePath: XERO_ARCHIVE_DIR, a directory or a URL Airflow's object
    storage writes (`s3://<conn id>@<bucket>/<prefix>/`, `file:///shared/archive/`), else $AIRFLOW_HOME/archive."""
    configured = os.environ.get("XERO_ARCHIVE_DIR", "").strip()
    return as_location(configured or Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "archive")


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
            result = archive_api_log(conn, before, archive_location())
        except (ValueError, ArchiveError) as error:
            raise AirflowFailException(str(error)) from None
    log.info("%s", result.describe())
    return {"before": before.isoformat(), "path": str(result.path) if result.path else None, "rows": result.rows}
