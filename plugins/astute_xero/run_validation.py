"""Validate a run's selected invoices and credit notes, organisation by organisation, batch by batch.

The chart of each organisation (Accounts, TaxRates, Currencies) is read from
Xero once per run. Documents and their lines stream out of PostgreSQL in keyset
batches, are validated by columns, and the verdicts go back in bulk: issues by
COPY, stages by one UPDATE per batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from astute_xero import sync_state
from astute_xero.documents import KINDS
from astute_xero.sql import load_sql
from astute_xero.validation import DocumentValidator, header_frame, line_frame
from astute_xero.xero_client import XeroCallError, XeroClient

log = logging.getLogger(__name__)

DOCUMENTS_PER_BATCH = 20_000


@dataclass(frozen=True)
class ValidationSummary:
    checked: int
    held: int
    organisations_stopped: int


def validate_run(conn: psycopg.Connection, client: XeroClient, run_id: int, validator: DocumentValidator) -> ValidationSummary:
    checked = held = stopped = 0
    for tenant_id, organisation in sync_state.exporting_tenants(conn, run_id):
        try:
            chart, calls = client.chart(tenant_id, organisation)
        except XeroCallError as error:
            with conn.transaction():
                sync_state.record_api_call(conn, run_id, error.call)
            # The organisation's own trouble (403: the app is disconnected from it; its daily limit; Xero still
            # failing after the client's retries) stops it for the run, with the reason, and the others go on.
            reason = error.organisation_stop_reason()
            if reason is None:
                raise  # no answer, a minute limit that persisted: worth Airflow's retry
            sync_state.stop_tenant(conn, run_id, tenant_id, reason)
            log.warning("organisation %s (%s) stopped for this run: %s", organisation, tenant_id, reason)
            stopped += 1
            continue
        with conn.transaction():
            for call in calls:
                sync_state.record_api_call(conn, run_id, call)

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
    conn.execute("UPDATE xero_sync.export_run SET documents_held = %s WHERE run_id = %s", (held, run_id))
    sync_state.refresh_work_list_statistics(conn)
    return ValidationSummary(checked, held, stopped)
