"""The actions of the report's pages (the help article's buttons) and the banner that follows their runs.

Each action is a run of an existing DAG with the values the page shows (Preview and Export: a run of
xero_invoice_export for the entity and dates of the Report Settings; Reset for export: xero_reset_for_export
for one document; Remove link: xero_remove_contact_link for one customer and organisation). The page starts
it through Airflow's REST API (report.airflow_api) and nothing here writes to the Astute database: the banner
reads what the run recorded in xero_sync.

Plain Python, no FastAPI: the web layer (report.web) checks the request and calls these.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from astute_xero.export.documents import CREDIT_NOTE, INVOICE, KINDS
from astute_xero.report import pages, run_summary
from astute_xero.report.airflow_api import DagRun
from astute_xero.report.fixes import fix_for
from astute_xero.sql import load_sql

EXPORT_DAG_ID = pages.EXPORT_DAG_ID
RESET_DAG_ID = pages.RESET_FOR_EXPORT_DAG_ID
REMOVE_LINK_DAG_ID = pages.REMOVE_CONTACT_LINK_DAG_ID
ACTION_DAGS = (EXPORT_DAG_ID, RESET_DAG_ID, REMOVE_LINK_DAG_ID)
RESETTABLE_LIMIT = 100
FINISHED = ("success", "failed")


# --- A form's CSRF token: bound to the user and the very Airflow credential the page was served to --------

def csrf_token(secret: str, user_id: str, credential: str) -> str:
    """An HMAC of the user and their Airflow token, keyed with the API server's secret key: a form posted with it
    comes from a page this server rendered for this login (another site can neither read nor compute it, and it
    is worthless once the user logs out or the token expires)."""
    bound = f"xero-actions|{user_id}|{hashlib.sha256(credential.encode()).hexdigest()}"
    return hmac.new(secret.encode(), bound.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: str, user_id: str, credential: str, presented: str) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_token(secret, user_id, credential), presented)


# --- What each action asks its DAG for ------------------------------------------------------------------------

def export_conf(billing_entity_id: int, date_from: dt.date | None, date_to: dt.date | None,
                preview: bool) -> dict[str, Any]:
    """xero_invoice_export's Params for one entity and the Report Settings' dates (empty: the DAG's defaults)."""
    return {"billing_entity_ids": [billing_entity_id], "date_from": date_from.isoformat() if date_from else None,
            "date_to": date_to.isoformat() if date_to else None, "preview": preview}


def reset_conf(kind: str, document_id: int) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValueError(f"unknown document kind {kind!r}")
    return {"invoice_ids": [document_id] if kind == INVOICE.name else [],
            "credit_note_ids": [document_id] if kind == CREDIT_NOTE.name else []}


def remove_link_conf(customer_id: int, tenant_id: str) -> dict[str, Any]:
    return {"customer_id": customer_id, "tenant_id": tenant_id}


def exports_entity(run: DagRun, billing_entity_id: int) -> bool:
    """Whether an export run's conf covers the entity (no entities: every entity linked to Xero)."""
    wanted = run.conf.get("billing_entity_ids") or []
    return not wanted or str(billing_entity_id) in {str(i) for i in wanted}


def running_for_entity(conn: psycopg.Connection, active: Iterable[DagRun], billing_entity_id: int) -> DagRun | None:
    """The export DAG's queued or running run that exports (or previews) the entity: one whose conf covers it,
    or one xero_sync records as running for it (a continuation, a run of every entity)."""
    active = list(active)
    recorded = {(dag_id, run_id) for dag_id, run_id in conn.execute(
        load_sql("ui_action_running_runs"), {"billing_entity_id": billing_entity_id})}
    for run in active:
        if exports_entity(run, billing_entity_id) or (run.dag_id, run.run_id) in recorded:
            return run
    return None


# --- The banner ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OrganisationProgress:
    tenant_id: str
    organisation: str | None
    chunks: int
    chunks_done: int
    documents_planned: int
    documents_sent: int


@dataclass(frozen=True)
class NotExported:
    """A document the run did not export (or a preview would not), with its message, what to fix and its row."""

    label: str
    outcome: str  # failed, held, waiting, not sent
    message: str
    fix: str
    anchor: str  # its row in the report: #invoice-42


@dataclass
class Banner:
    dag_id: str
    airflow_run_id: str
    state: str  # Airflow's: queued, running, success, failed
    triggering_user: str | None
    preview: bool = False
    export_run_id: int | None = None
    progress: list[OrganisationProgress] = field(default_factory=list)
    invoices: int = 0  # exported, or would go (a preview)
    credit_notes: int = 0
    not_exported: list[NotExported] = field(default_factory=list)
    waiting: int = 0  # a preview: credit notes that would wait for their invoice
    left_for_later: int = 0
    message: str = ""  # for the operations DAGs: what the run did

    @property
    def done(self) -> bool:
        return self.state in FINISHED

    def as_json(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id, "run_id": self.airflow_run_id, "state": self.state, "done": self.done,
            "preview": self.preview, "export_run_id": self.export_run_id, "triggering_user": self.triggering_user,
            "progress": [p.__dict__ for p in self.progress], "invoices": self.invoices,
            "credit_notes": self.credit_notes, "not_exported": [n.__dict__ for n in self.not_exported],
        }


_FIX_FOR_OUTCOME = {
    "failed": "Fix it in Astute (or Xero) as Xero's message says: every export tries it again",
    "waiting": "Export its invoice first (fix what holds the invoice back)",
    "not_sent": "The run ended before sending it: it goes in the next export",
    "sending": "Its outcome is not known yet: the next export looks it up in Xero before sending",
}


def _anchor(kind: str, document_id: int) -> str:
    return f"{kind}-{document_id}"


def _held_fix(rules: Iterable[str]) -> str:
    return "; ".join(fix_for(rule).title + " (" + fix_for(rule).where + ")" for rule in rules) or "See the message"


def follow(conn: psycopg.Connection, run: DagRun, billing_entity_id: int | None) -> Banner:
    """What the page's banner says of an Airflow run of one of the action DAGs, from xero_sync (reads only)."""
    banner = Banner(run.dag_id, run.run_id, run.state, run.triggering_user, preview=bool(run.conf.get("preview")))
    if run.dag_id != EXPORT_DAG_ID:
        return banner
    row = conn.execute(load_sql("ui_action_export_run"),
                       {"dag_id": run.dag_id, "airflow_run_id": run.run_id}).fetchone()
    if row is None:  # not started yet
        return banner
    banner.export_run_id, kind, status, _, _ = row
    banner.preview = kind == "preview"
    banner.progress = [OrganisationProgress(*p) for p in conn.execute(load_sql("ui_action_progress"),
                                                                       {"run_id": banner.export_run_id})]
    if not banner.done or status == "running":
        return banner
    if banner.preview:
        _preview_outcome(conn, banner, billing_entity_id)
    else:
        _export_outcome(conn, banner, billing_entity_id)
    return banner


def _export_outcome(conn: psycopg.Connection, banner: Banner, billing_entity_id: int | None) -> None:
    rules = {(kind, document_id): list(r) for kind, document_id, r in conn.execute(
        load_sql("ui_action_rules"), {"run_id": banner.export_run_id})}
    for entity_id, kind, document_id, number, outcome, reason, _chunk_no in conn.execute(
            load_sql("run_outcomes"), {"run_id": banner.export_run_id}):
        if billing_entity_id is not None and entity_id != billing_entity_id:
            continue
        if outcome == "exported":
            if kind == INVOICE.name:
                banner.invoices += 1
            else:
                banner.credit_notes += 1
        elif outcome in ("deferred", "elsewhere"):
            banner.left_for_later += outcome == "deferred"
        else:
            fix = _held_fix(rules.get((kind, document_id), [])) if outcome == "held" else _FIX_FOR_OUTCOME.get(
                outcome, "")
            banner.not_exported.append(NotExported(KINDS[kind].describe(document_id, number), outcome.replace("_", " "),
                                                   reason or "no reason recorded", fix, _anchor(kind, document_id)))


def _preview_outcome(conn: psycopg.Connection, banner: Banner, billing_entity_id: int | None) -> None:
    from astute_xero.export import sync_state

    scope = sync_state.run_scope(conn, banner.export_run_id)
    plans = run_summary.preview_plans(conn, banner.export_run_id, scope.date_from, scope.date_to, billing_entity_id)
    for plan in plans.values():
        banner.invoices += plan.invoices
        banner.credit_notes += plan.credit_notes
        banner.waiting += plan.waiting
        banner.left_for_later += plan.left_for_later
        for hold in plan.held_documents:
            banner.not_exported.append(NotExported(hold.label, "would be held back", hold.reason,
                                                   _held_fix(hold.rules), _anchor(hold.kind, hold.document_id)))


# --- What may be reset ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResettableDocument:
    kind: str
    document_id: int
    number: str | None
    document_date: dt.date
    state: str  # history (never sent, dated before go-live), mock_exported or failed
    last_error: str | None

    @property
    def label(self) -> str:
        return KINDS[self.kind].describe(self.document_id, self.number)

    @property
    def why(self) -> str:
        return {"history": "dated before go-live, never sent", "mock_exported": "marked as exported by the mock export",
                "failed": "Xero refused it"}.get(self.state, self.state)


def resettable(conn: psycopg.Connection, billing_entity_id: int, date_from: dt.date | None,
               date_to: dt.date | None) -> list[ResettableDocument]:
    return [ResettableDocument(*row) for row in conn.execute(
        load_sql("ui_resettable_documents"), {"billing_entity_id": billing_entity_id, "date_from": date_from,
                                              "date_to": date_to, "limit": RESETTABLE_LIMIT})]
