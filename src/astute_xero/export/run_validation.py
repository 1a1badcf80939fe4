"""Validate a run's selected invoices and credit notes, organisation by organisation, batch by batch.

The chart of each organisation (Accounts, TaxRates, Currencies, TrackingCategories, and its lock dates
from Organisation) is read from Xero once per run, every organisation's side by side, an organisation's
five reads at once (up to its concurrency). Documents and their lines stream out of PostgreSQL in keyset
batches, are validated by columns, and the verdicts go back in bulk: issues by
COPY, stages by one UPDATE per batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from astute_xero.export import organisations, sync_state
from astute_xero.export.documents import KINDS
from astute_xero.sql import load_sql
from astute_xero.export.validation import DocumentValidator, XeroChart, header_frame, line_frame
from astute_xero.xero.chart import CHART_READS, chart_from_reads
from astute_xero.xero.client import XeroCallError, XeroClient

log = logging.getLogger(__name__)

DOCUMENTS_PER_BATCH = 20_000


@dataclass(frozen=True)
class ValidationSummary:
    checked: int
    held: int
    organisations_stopped: int


def validate_run(
    conn: psycopg.Connection,
    client: XeroClient,
    run_id: int,
    validator: DocumentValidator,
    each: organisations.Runner | None = None,
) -> ValidationSummary:
    """Read every organisation's chart (side by side when `each` says so), then validate its documents."""
    each = each or organisations.one_by_one(conn, client)
    checked = held = stopped = 0
    tenants = sync_state.exporting_tenants(conn, run_id)
    charts = each(tenants, lambda organisation: _read_chart(organisation, run_id))
    organisations.raise_unexpected(charts, XeroCallError)
    unread = [chart for chart in charts if isinstance(chart, XeroCallError)]
    for (tenant_id, organisation), chart in zip(tenants, charts):
        if isinstance(chart, XeroCallError):
            continue  # no answer, a minute limit that persisted: raised below, for Airflow's retry
        if chart is None:
            stopped += 1
            continue
        for kind in KINDS.values():
            after = 0
            while True:
                headers = conn.execute(
                    load_sql("validation_document_batch"),
                    {"run_id": run_id, "tenant_id": tenant_id, "kind": kind.name, "after_document_id": after,
                     "batch_size": DOCUMENTS_PER_BATCH},
                ).fetchall()
                if not headers:
                    break
                document_ids = [row[0] for row in headers]
                lines = conn.execute(
                    load_sql("validation_line_batch"), {"kind": kind.name, "document_ids": document_ids}
                ).fetchall()
                issues = validator.validate(kind, header_frame(headers), line_frame(lines), chart)
                held_ids = sorted({issue.document_id for issue in issues})
                with conn.transaction():
                    with conn.cursor().copy(
                        "COPY xero_sync.validation_issue (run_id, kind, document_id, line_no, rule, message) FROM STDIN"
                    ) as copy:
                        for issue in issues:
                            copy.write_row((run_id, kind.name, issue.document_id, issue.line_no, issue.rule, issue.message))
                    conn.execute(
                        load_sql("validation_mark_batch"),
                        {"run_id": run_id, "kind": kind.name, "document_ids": document_ids, "held_ids": held_ids},
                    )
                checked += len(document_ids)
                held += len(held_ids)
                after = document_ids[-1]
        log.info("organisation %s (%s): %d document(s) checked so far, %d held back", organisation, tenant_id, checked, held)
    if not sync_state.is_preview(conn, run_id):
        # A preview's verdicts stay its own (its run's validation_issue, which the report shows): document_hold
        # steers what the next export selects, and the export must select what its preview did.
        conn.execute(load_sql("document_hold_refresh"), {"run_id": run_id})
    conn.execute(load_sql("run_count_held"), {"run_id": run_id})
    sync_state.refresh_work_list_statistics(conn)
    if unread:
        raise unread[0]  # every other organisation's documents are validated; the retry reads this chart again
    return ValidationSummary(checked, held, stopped)


def _read_chart(organisation: organisations.Organisation, run_id: int) -> XeroChart | None:
    """The organisation's chart, its five reads at once, each call logged; None when the organisation's own
    trouble (403: the app is disconnected from it; its daily limit; Xero still failing after the client's
    retries) stops it for the run, with the reason. Anything else raises, for Airflow's retry."""
    conn, tenant_id = organisation.conn, organisation.tenant_id

    def read(conn: psycopg.Connection, client: XeroClient, endpoint: str) -> object:
        try:
            answer, call = client.read_chart_part(tenant_id, endpoint)
        except XeroCallError as error:
            with conn.transaction():
                sync_state.record_api_call(conn, run_id, error.call)
            raise
        with conn.transaction():
            sync_state.record_api_call(conn, run_id, call)
        return answer

    try:
        answers = organisation.at_once(read, list(CHART_READS))
    except XeroCallError as error:
        reason = error.organisation_stop_reason()
        if reason is None:
            raise
        sync_state.stop_tenant(conn, run_id, tenant_id, reason)
        log.warning("organisation %s (%s) stopped for this run: %s", organisation.label, tenant_id, reason)
        return None
    return chart_from_reads(tenant_id, organisation.label, dict(zip(CHART_READS, answers)))
