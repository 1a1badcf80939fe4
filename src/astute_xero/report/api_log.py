"""The API Log report: one row per call to Xero (xero_sync.api_log), filtered and paged.

The log is the audit trail and is never purged, so it can hold millions of rows: a page is read by
keyset (the calls older than the last one shown), newest first, and the filter's count stops at a cap.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg

from astute_xero.sql import load_sql

PAGE_SIZES = (50, 100, 200, 500)  # offered by the form; any size up to the largest is accepted
MAX_PAGE_SIZE = PAGE_SIZES[-1]
COUNT_CAP = 10_000


@dataclass(frozen=True)
class ApiLogFilter:
    run_id: int | None = None
    tenant_id: str | None = None
    errors_only: bool = False  # calls without a 2xx answer (refused, failed, or never answered)
    before_id: int | None = None  # the page after the one that ended at this call
    limit: int = PAGE_SIZES[0]

    def params(self) -> dict[str, object]:
        return {"run_id": self.run_id, "tenant_id": self.tenant_id, "errors_only": self.errors_only,
                "before_id": self.before_id, "limit": self.limit}


@dataclass(frozen=True)
class ApiCallRow:
    id: int
    run_id: int | None
    dag_id: str | None
    airflow_run_id: str | None
    tenant_id: str | None
    method: str
    endpoint: str
    chunk_no: int | None
    item_count: int
    http_status: int | None
    started_at: dt.datetime
    duration_ms: int
    error: str | None
    day_remaining: int | None  # Xero's X-DayLimit-Remaining after the call
    minute_remaining: int | None  # X-MinLimit-Remaining
    items_exported: int | None  # the per-item outcome, for a chunk of documents
    items_failed: int | None

    @property
    def succeeded(self) -> bool:
        return self.http_status is not None and self.http_status < 400


@dataclass(frozen=True)
class ApiLogPage:
    filter: ApiLogFilter
    rows: list[ApiCallRow]
    matching: int  # how many calls the filter matches, up to COUNT_CAP
    has_more: bool  # older calls exist beyond this page

    @property
    def matching_text(self) -> str:
        return f"{COUNT_CAP:,}+" if self.matching >= COUNT_CAP else f"{self.matching:,}"

    @property
    def next_before_id(self) -> int | None:
        return self.rows[-1].id if self.has_more and self.rows else None


def read_page(conn: psycopg.Connection, wanted: ApiLogFilter) -> ApiLogPage:
    """One page of the log: `limit` calls, newest first, older than `before_id` when given."""
    params = wanted.params()
    rows = [ApiCallRow(*row) for row in conn.execute(load_sql("ui_api_log_page"), {**params, "limit": wanted.limit + 1})]
    (matching,) = conn.execute(load_sql("ui_api_log_count"), {**params, "cap": COUNT_CAP}).fetchone()
    return ApiLogPage(wanted, rows[: wanted.limit], matching, len(rows) > wanted.limit)
