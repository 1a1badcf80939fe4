"""The Xero Integration report (the help article's Report Summary), per billing entity and date range.

What is still to export (invoices, pay runs, credit notes), what blocks it and what to fix, and
the entity's last runs with their API-log chunk counts and outcomes. As text (the export DAG's
last task logs it), as a self-contained HTML page, and from the command line without an export:

    python -m astute_xero.report.integration --billing-entity-id 1 [--date-from 2026-06-01] [--date-to …] [--html report.html]

The database is ASTUTE_DB_URL (or --db-url), else the Airflow connection astute_db.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from astute_xero.export import sync_state
from astute_xero.export.documents import CREDIT_NOTE, KINDS
from astute_xero.sql import load_sql

RECENT_RUNS = 10


@dataclass(frozen=True)
class BlockedDocument:
    label: str
    document_date: dt.date
    kind: str  # "Validation error", "Failed in Xero", "Waiting for its invoice" or "Not allocated"
    reason: str


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

    @property
    def period(self) -> str:
        return f"{self.date_from or 'the beginning'} to {self.date_to or 'today'}"


def build_report(
    conn: psycopg.Connection, billing_entity_id: int, date_from: dt.date | None = None, date_to: dt.date | None = None
) -> IntegrationReport:
    entity = sync_state.billing_entity(conn, billing_entity_id)
    report = IntegrationReport(billing_entity_id, entity.name, entity.tenant_id, entity.go_live, date_from, date_to,
                               dt.datetime.now(dt.timezone.utc))
    params = {"billing_entity_id": billing_entity_id, "date_from": date_from, "date_to": date_to}
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
        label = KINDS[kind_name].describe(document_id, number)
        if issues:
            report.blocked.append(BlockedDocument(label, document_date, "Validation error", issues))
        elif status == "failed":
            report.blocked.append(BlockedDocument(label, document_date, "Failed in Xero", last_error or ""))
        elif waiting:
            report.blocked.append(BlockedDocument(label, document_date, "Waiting for its invoice", waiting))
    report.pay_runs_to_export = len(pay_runs)
    for credit_note_id, number, credit_date, detail in conn.execute(load_sql("report_allocation_failures"), params):
        report.blocked.append(
            BlockedDocument(CREDIT_NOTE.describe(credit_note_id, number), credit_date, "Not allocated", detail or "")
        )
    report.runs = [RunLine(*r) for r in conn.execute(load_sql("report_recent_runs"),
                                                     {"billing_entity_id": billing_entity_id, "limit": RECENT_RUNS})]
    return report


def render_text(report: IntegrationReport) -> str:
    lines = [
        f"Xero Integration report - {report.entity_name} (billing entity {report.billing_entity_id}), {report.period}",
        f"  Invoices still to export:     {report.invoices_to_export}",
        f"  Pay runs still to export:     {report.pay_runs_to_export}",
        f"  Credit notes still to export: {report.credit_notes_to_export}",
        f"  Validation errors, Xero failures and waiting credit notes: {len(report.blocked)}",
    ]
    lines += [f"    - {b.label} ({b.document_date}): {b.kind}: {b.reason}" for b in report.blocked]
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
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#1f2933;background:#f7f9fb}
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.1rem;margin:2rem 0 .6rem}
.meta{color:#52606d;margin-bottom:1.5rem}
.tiles{display:flex;gap:1rem;flex-wrap:wrap}
.tile{background:#fff;border:1px solid #d9e2ec;border-radius:8px;padding:1rem 1.4rem;min-width:11rem}
.tile .n{font-size:2rem;font-weight:600}.tile .l{color:#52606d}
.tile.bad .n{color:#b42318}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d9e2ec}
th,td{text-align:left;padding:.45rem .7rem;border-bottom:1px solid #e4e7eb;vertical-align:top}
th{background:#eef2f7;font-weight:600}
.kind{white-space:nowrap;font-weight:600}.kind.v{color:#b54708}.kind.x{color:#b42318}
.empty{color:#52606d;font-style:italic}.nowrap{white-space:nowrap}
"""


def render_html(report: IntegrationReport) -> str:
    """A page a finance person can open: one file, no scripts, no external resources."""
    e = html.escape
    tiles = [
        ("Invoices still to export", report.invoices_to_export, False),
        ("Pay runs still to export", report.pay_runs_to_export, False),
        ("Credit notes still to export", report.credit_notes_to_export, False),
        ("Validation errors, failures and waiting credit notes", len(report.blocked), bool(report.blocked)),
    ]
    tile_html = "".join(
        f'<div class="tile{" bad" if bad else ""}"><div class="n" data-count="{e(label)}">{n}</div>'
        f'<div class="l">{e(label)}</div></div>'
        for label, n, bad in tiles
    )
    blocked_rows = "".join(
        f'<tr><td class="nowrap">{e(b.label)}</td><td class="nowrap">{b.document_date}</td>'
        f'<td class="kind {"x" if b.kind == "Failed in Xero" else "v"}">{e(b.kind)}</td>'
        f"<td>{'<br>'.join(e(part) for part in b.reason.split(' | '))}</td></tr>"
        for b in report.blocked
    ) or '<tr><td colspan="4" class="empty">Nothing blocks the export.</td></tr>'
    run_rows = "".join(
        f"<tr><td>{r.run_id}</td><td>{e(r.kind.replace('_', ' '))}</td><td class=\"nowrap\">{r.started_at:%Y-%m-%d %H:%M}</td>"
        f"<td>{e(r.status.replace('_', ' '))}</td><td>{r.chunks}</td><td>{r.invoices_exported} + {r.credit_notes_exported}</td><td>{r.failed}</td>"
        f"<td>{r.held}</td><td>{r.allocated}</td><td>{r.mock_exported}</td><td>{e(r.detail or '')}</td></tr>"
        for r in report.runs
    ) or '<tr><td colspan="11" class="empty">No export has run for this entity yet.</td></tr>'
    organisation = f"Xero organisation {e(report.tenant_id)}" if report.tenant_id else "not linked to Xero"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Xero Integration - {e(report.entity_name)}</title><style>{_CSS}</style></head>
<body>
<h1>Xero Integration - {e(report.entity_name)}</h1>
<div class="meta">Billing entity {report.billing_entity_id} · {organisation} · live since {report.go_live or 'not live'}
 · documents dated {e(report.period)} · generated {report.generated_at:%Y-%m-%d %H:%M} UTC</div>
<h2>Report Summary</h2>
<div class="tiles">{tile_html}</div>
<h2>What blocks the export (fix these in Astute or Xero, then export again)</h2>
<table><thead><tr><th>Document</th><th>Date</th><th>Problem</th><th>What to fix</th></tr></thead>
<tbody>{blocked_rows}</tbody></table>
<h2>Last runs</h2>
<table><thead><tr><th>Run</th><th>Kind</th><th>Started</th><th>Outcome</th><th>Chunks (API log)</th>
<th>Exported (invoices + credit notes)</th><th>Failed</th><th>Held back</th><th>Allocated</th><th>Mock-exported</th>
<th>Note</th></tr></thead>
<tbody>{run_rows}</tbody></table>
</body></html>
"""


def write_html(report: IntegrationReport, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"xero_integration_entity_{report.billing_entity_id}.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path


def _connect(db_url: str | None) -> psycopg.Connection:
    if db_url:
        return psycopg.connect(db_url, autocommit=True)
    from astute_xero.hooks import astute_connection  # the Airflow connection, where Airflow is configured

    return astute_connection()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m astute_xero.report.integration", description=__doc__.split("\n\n")[0])
    parser.add_argument("--billing-entity-id", type=int, required=True)
    parser.add_argument("--date-from", type=dt.date.fromisoformat)
    parser.add_argument("--date-to", type=dt.date.fromisoformat)
    parser.add_argument("--html", type=Path, help="also write the report as a self-contained HTML page here")
    parser.add_argument("--db-url", default=os.environ.get("ASTUTE_DB_URL"), help="default: $ASTUTE_DB_URL")
    args = parser.parse_args(argv)
    with _connect(args.db_url) as conn:
        try:
            report = build_report(conn, args.billing_entity_id, args.date_from, args.date_to)
        except ValueError as error:
            parser.error(str(error))
    print(render_text(report))
    if args.html:
        args.html.parent.mkdir(parents=True, exist_ok=True)
        args.html.write_text(render_html(report), encoding="utf-8")
        print(f"HTML report: {args.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
