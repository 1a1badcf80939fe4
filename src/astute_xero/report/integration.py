"""The Xero Integration report (the help article's Report Summary), per billing entity and date range.

What is still to export (invoices, pay runs, credit notes), what blocks it and what to fix, and
the entity's last runs with their API-log chunk counts and outcomes. As text (the export DAG's
last task logs it), as a self-contained HTML page (the same Jinja templates as the report's page in
the Airflow UI, astute_xero.report.web), and from the command line without an export:

    astute-xero report --billing-entity-id 1 [--date-from 2026-06-01] [--date-to …] [--html report.html]

(astute_xero.cli: the database is --db-url, $ASTUTE_DB_URL, else the Airflow connection astute_db.)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import psycopg

from astute_xero.export import sync_state
from astute_xero.export.documents import CREDIT_NOTE, INVOICE, KINDS
from astute_xero.report import run_summary
from astute_xero.report.fixes import Fix, fix_for
from astute_xero.sql import load_sql

RECENT_RUNS = 10

# Why a document is not in Xero yet (BlockedDocument.kind).
VALIDATION_ERROR = "Validation error"
FAILED_IN_XERO = "Failed in Xero"
WAITING_FOR_INVOICE = "Waiting for its invoice"
NOT_ALLOCATED = "Not allocated"


@dataclass(frozen=True)
class Problem:
    """One validation error of a held-back document: the reason a finance person acts on."""

    rule: str
    message: str
    line_no: int | None = None

    @property
    def fix(self) -> Fix:
        return fix_for(self.rule)


@dataclass(frozen=True)
class BlockedDocument:
    label: str
    document_date: dt.date
    kind: str  # VALIDATION_ERROR, FAILED_IN_XERO, WAITING_FOR_INVOICE or NOT_ALLOCATED
    reason: str
    document_kind: str = INVOICE.name  # the Astute record: astute.invoice or astute.credit_note ...
    document_id: int = 0  # ... and its id
    customer_id: int | None = None  # known for validation errors (some are about the customer's Contact)
    problems: tuple[Problem, ...] = ()  # each validation error, with its line
    waits_for_invoice_id: int | None = None  # a waiting credit note's invoice
    from_preview_run: int | None = None  # its validation errors were found by this preview (the latest look at it)

    @property
    def anchor(self) -> str:
        """The document's row on the page: #invoice-42."""
        return f"{self.document_kind}-{self.document_id}"

    @property
    def astute_record(self) -> str:
        return f"astute.{self.document_kind} id {self.document_id}"

    def astute_field(self, problem: Problem) -> str | None:
        """The Astute column a validation error is about, e.g. astute.invoice_line.account_code."""
        return problem.fix.astute_field(KINDS[self.document_kind])


@dataclass(frozen=True)
class LatestPreview:
    """The entity's latest preview run (the export DAG's Param `preview`): what an export would send, hold back
    and leave, as Astute's Report Summary shows validation errors before an export."""

    run_id: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    status: str  # 'previewed', or 'running' while it runs
    decision: str  # for the entity: 'export', or 'stopped' (with the reason in detail)
    detail: str | None
    dag_id: str | None
    airflow_run_id: str | None
    export_since: int | None  # the first export run after it, if any: what the preview said it would send
    plan: run_summary.EntityPlan

    @property
    def headline(self) -> str:
        return (f"Latest preview (run {self.run_id}, {self.started_at.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC): "
                f"{self.plan.would_go} would go, {self.plan.held} held back")


@dataclass(frozen=True)
class RunLine:
    run_id: int
    kind: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    decision: str
    detail: str | None
    chunks: int
    invoices_exported: int
    credit_notes_exported: int
    failed: int
    held: int
    allocated: int
    mock_exported: int
    dag_id: str | None = None  # the Airflow DAG run that did it
    airflow_run_id: str | None = None


PAYMENT_STATES = ("paid", "part-paid", "awaiting payment", "overdue", "not in Xero")


@dataclass(frozen=True)
class PaymentState:
    state: str  # one of PAYMENT_STATES
    invoices: int
    total: Decimal
    amount_due: Decimal


@dataclass(frozen=True)
class PayRunPayment:
    pay_run_id: int
    period_ending: dt.date
    state: str
    invoices: int
    paid: int
    part_paid: int
    awaiting_payment: int
    overdue: int
    not_in_xero: int
    amount_due: Decimal


@dataclass(frozen=True)
class Drift:
    drift: str  # missing_in_xero, voided_in_xero, deleted_in_xero, total_differs, contact_changed, unknown_to_astute
    kind: str
    astute_id: int | None
    number: str | None
    detail: str
    what_to_do: str
    found_at: dt.datetime

    @property
    def title(self) -> str:
        return DRIFT_TITLES.get(self.drift, self.drift)


DRIFT_TITLES = {
    "missing_in_xero": "No longer in Xero", "voided_in_xero": "Voided in Xero", "deleted_in_xero": "Deleted in Xero",
    "total_differs": "Total differs", "contact_changed": "Another Contact in Xero",
    "unknown_to_astute": "Unknown to Astute",
}


@dataclass
class IntegrationReport:
    billing_entity_id: int
    entity_name: str
    tenant_id: str | None
    go_live: dt.date | None
    date_from: dt.date | None
    date_to: dt.date | None
    generated_at: dt.datetime
    invoices_to_export: int = 0
    pay_runs_to_export: int = 0
    credit_notes_to_export: int = 0
    blocked: list[BlockedDocument] = field(default_factory=list)
    runs: list[RunLine] = field(default_factory=list)
    # What Xero showed at the last read back (xero_status_sync); None: never read back.
    read_back_at: dt.datetime | None = None
    read_back_error: str | None = None
    full_reconciliation_at: dt.datetime | None = None  # the last read that compared every document with Astute
    payments: list[PaymentState] = field(default_factory=list)
    pay_runs: list[PayRunPayment] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    preview: LatestPreview | None = None  # the latest preview run of the entity; None: never previewed

    def payment(self, state: str) -> PaymentState:
        return next((p for p in self.payments if p.state == state), PaymentState(state, 0, Decimal(0), Decimal(0)))

    @property
    def period(self) -> str:
        return f"{self.date_from or 'the beginning'} to {self.date_to or 'today'}"

    @property
    def fixes(self) -> list[Fix]:
        """The fixes the blocked documents call for, each once, in the order they first appear."""
        seen: dict[str, Fix] = {}
        for blocked in self.blocked:
            for problem in blocked.problems:
                seen.setdefault(problem.rule, problem.fix)
        return list(seen.values())


def build_report(
    conn: psycopg.Connection, billing_entity_id: int, date_from: dt.date | None = None, date_to: dt.date | None = None
) -> IntegrationReport:
    entity = sync_state.billing_entity(conn, billing_entity_id)
    report = IntegrationReport(billing_entity_id, entity.name, entity.tenant_id, entity.go_live, date_from, date_to,
                               dt.datetime.now(dt.timezone.utc))
    params = {"billing_entity_id": billing_entity_id, "date_from": date_from, "date_to": date_to}
    problems: dict[tuple[str, int], list[Problem]] = defaultdict(list)
    customers: dict[tuple[str, int], int] = {}
    for kind_name, document_id, customer_id, line_no, rule, message in conn.execute(
        load_sql("report_validation_issues"), params
    ):
        problems[(kind_name, document_id)].append(Problem(rule, message, line_no))
        customers[(kind_name, document_id)] = customer_id
    pay_runs = set()
    for kind_name, document_id, number, document_date, pay_run_id, status, last_error, issues, waiting in conn.execute(
        load_sql("report_outstanding"), params
    ):
        if kind_name == CREDIT_NOTE.name:
            report.credit_notes_to_export += 1
        else:
            report.invoices_to_export += 1
        if pay_run_id is not None:
            pay_runs.add(pay_run_id)
        document = {"label": KINDS[kind_name].describe(document_id, number), "document_date": document_date,
                    "document_kind": kind_name, "document_id": document_id}
        if issues:
            report.blocked.append(BlockedDocument(
                kind=VALIDATION_ERROR, reason=issues, customer_id=customers.get((kind_name, document_id)),
                problems=tuple(problems[(kind_name, document_id)]), **document))
        elif status == "failed":
            report.blocked.append(BlockedDocument(kind=FAILED_IN_XERO, reason=last_error or "", **document))
        elif waiting:
            report.blocked.append(BlockedDocument(kind=WAITING_FOR_INVOICE, reason=waiting, **document))
    report.pay_runs_to_export = len(pay_runs)
    waiting_ids = [b.document_id for b in report.blocked if b.kind == WAITING_FOR_INVOICE]
    if waiting_ids:
        credited = dict(conn.execute(load_sql("report_credited_invoices"), {"credit_note_ids": waiting_ids}))
        report.blocked = [dataclasses.replace(b, waits_for_invoice_id=credited.get(b.document_id))
                          if b.kind == WAITING_FOR_INVOICE else b for b in report.blocked]
    for credit_note_id, number, credit_date, detail in conn.execute(load_sql("report_allocation_failures"), params):
        report.blocked.append(BlockedDocument(
            CREDIT_NOTE.describe(credit_note_id, number), credit_date, NOT_ALLOCATED, detail or "",
            document_kind=CREDIT_NOTE.name, document_id=credit_note_id))
    runs = [RunLine(*r) for r in conn.execute(load_sql("report_recent_runs"),
                                              {"billing_entity_id": billing_entity_id, "limit": RECENT_RUNS})]
    if runs:
        airflow_runs = {run_id: (dag_id, airflow_run_id) for run_id, dag_id, airflow_run_id in conn.execute(
            load_sql("report_run_links"), {"run_ids": [r.run_id for r in runs]})}
        runs = [dataclasses.replace(r, dag_id=airflow_runs[r.run_id][0], airflow_run_id=airflow_runs[r.run_id][1])
                if r.run_id in airflow_runs else r for r in runs]
    report.runs = runs
    _read_back(conn, report, params)
    _latest_preview(conn, report)
    return report


def _latest_preview(conn: psycopg.Connection, report: IntegrationReport) -> None:
    """The entity's latest preview, and which blocked documents' validation errors it found."""
    row = conn.execute(load_sql("report_latest_preview"), {"billing_entity_id": report.billing_entity_id}).fetchone()
    if row is None:
        return
    run_id = row[0]
    scope = sync_state.run_scope(conn, run_id)
    plan = run_summary.preview_plans(conn, run_id, scope.date_from, scope.date_to, report.billing_entity_id).get(
        report.billing_entity_id) or run_summary.EntityPlan(report.billing_entity_id, 0, 0, 0, 0, 0, 0, 0)
    report.preview = LatestPreview(*row, plan=plan)
    validation = [b for b in report.blocked if b.kind == VALIDATION_ERROR]
    if not validation:
        return
    found = {(kind, document_id): preview_run for kind, document_id, preview_run in conn.execute(
        load_sql("report_preview_found"), {"kinds": [b.document_kind for b in validation],
                                           "document_ids": [b.document_id for b in validation]})}
    report.blocked = [dataclasses.replace(b, from_preview_run=found[(b.document_kind, b.document_id)])
                      if b.kind == VALIDATION_ERROR and (b.document_kind, b.document_id) in found else b
                      for b in report.blocked]


def _read_back(conn: psycopg.Connection, report: IntegrationReport, params: dict) -> None:
    """The payment picture and the drift, as xero_status_sync last read them (nothing before its first read)."""
    status = conn.execute(load_sql("report_status_sync"), params).fetchone()
    if status is None:
        return
    report.read_back_at, report.read_back_error, report.full_reconciliation_at = status
    by_state = {state: PaymentState(state, n, total, due)
                for state, n, total, due in conn.execute(load_sql("report_payments"), params)}
    report.payments = [by_state[state] for state in PAYMENT_STATES if state in by_state]
    report.pay_runs = [PayRunPayment(*row) for row in conn.execute(
        load_sql("report_pay_run_payments"), {**params, "limit": RECENT_RUNS})]
    report.drift = [Drift(*row) for row in conn.execute(load_sql("report_drift"), params)]


def render_text(report: IntegrationReport) -> str:
    lines = [
        f"Xero Integration report - {report.entity_name} (billing entity {report.billing_entity_id}), {report.period}",
        f"  Invoices still to export:     {report.invoices_to_export}",
        f"  Pay runs still to export:     {report.pay_runs_to_export}",
        f"  Credit notes still to export: {report.credit_notes_to_export}",
        f"  Validation errors, Xero failures and waiting credit notes: {len(report.blocked)}",
    ]
    lines += [f"    - {b.label} ({b.document_date}): {b.kind}"
              + (f" (found by preview run {b.from_preview_run})" if b.from_preview_run else "") + f": {b.reason}"
              for b in report.blocked]
    if report.preview is not None:
        preview, plan = report.preview, report.preview.plan
        lines.append(f"  {preview.headline}"
                     + (f"; export run {preview.export_since} has run since" if preview.export_since else ""))
        if preview.decision == "stopped":
            lines.append(f"    stopped: {preview.detail}")
        lines.append(f"    would go: {plan.invoices} invoice(s), {plan.credit_notes} credit note(s) in {plan.chunks} "
                     f"chunk(s); Contacts to create: {len(plan.contacts_doing('create'))}, to rename: "
                     f"{len(plan.contacts_doing('rename'))}; credit notes that would wait: {plan.waiting}; "
                     f"left for later runs: {plan.left_for_later}")
        lines += [f"    held back: {held.label}: {held.reason}" for held in plan.held_documents]
    lines.append("  Last runs:")
    lines += [
        f"    run {r.run_id} {r.kind} {r.started_at:%Y-%m-%d %H:%M} {r.status}: {r.chunks} chunk(s) in the API log, "
        f"{r.invoices_exported} invoice(s) and {r.credit_notes_exported} credit note(s) exported, "
        f"{r.failed} failed, {r.held} held back, "
        f"{r.allocated} allocated"
        + (f", {r.mock_exported} mock-exported" if r.mock_exported else "")
        + (f" ({r.detail})" if r.detail else "")
        for r in report.runs
    ] or ["    none yet"]
    if report.read_back_at is not None:
        lines.append(f"  In Xero (read back {report.read_back_at:%Y-%m-%d %H:%M} UTC): "
                     + ", ".join(f"{p.invoices} {p.state} ({p.amount_due} due)" for p in report.payments))
        if report.full_reconciliation_at is not None:
            lines.append(f"  Last full reconciliation (every document compared): "
                         f"{report.full_reconciliation_at:%Y-%m-%d %H:%M} UTC")
        lines.append(f"  Astute and Xero disagree: {len(report.drift)}")
        lines += [f"    - {d.title}: {d.detail} What to do: {d.what_to_do}" for d in report.drift]
    return "\n".join(lines)


def render_html(report: IntegrationReport) -> str:
    """The report as one self-contained HTML file: no scripts, no external resources; the page of the
    Airflow UI (astute_xero.report.web) from the same template, without its settings form."""
    from astute_xero.report import rendering

    return rendering.render_integration(report, rendering.links_for_file())


def write_html(report: IntegrationReport, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"xero_integration_entity_{report.billing_entity_id}.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path
