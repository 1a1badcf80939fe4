"""What the people who run the integration do besides the export (the help article).

Going live without re-sending history (the mock export), sending held-back or
historical items on purpose (reset for export), and starting a customer's Contact
link afresh (remove the link). None of these calls Xero.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import psycopg

from astute_xero.export import sync_state
from astute_xero.export.documents import CREDIT_NOTE, INVOICE
from astute_xero.sql import load_sql


@dataclass(frozen=True)
class MockExportResult:
    run_id: int
    entity_name: str
    migration_date: dt.date
    invoices_marked: int
    credit_notes_marked: int
    already_marked: int

    def describe(self) -> str:
        if not (self.invoices_marked or self.credit_notes_marked):
            return (
                f"Mock export for {self.entity_name} before {self.migration_date}: nothing to change. "
                f"{self.already_marked} item(s) dated before it are already recorded (mock-exported, exported "
                "or reset); triggering again is harmless."
            )
        return (
            f"Mock export for {self.entity_name} before {self.migration_date} (run {self.run_id}): "
            f"{self.invoices_marked} invoice(s) and {self.credit_notes_marked} credit note(s) recorded as "
            "mock_exported. The regular export will not send them unless they are reset."
        )


def mock_export(
    conn: psycopg.Connection, *, billing_entity_id: int, migration_date: dt.date | None, dag_id: str, airflow_run_id: str
) -> MockExportResult:
    entity = sync_state.billing_entity(conn, billing_entity_id)
    name, go_live = entity.name, entity.go_live
    if entity.tenant_id is None:
        raise ValueError(f"billing entity {billing_entity_id} ({name}) is not linked to a Xero organisation "
                         "(billing_entity.xero_tenant_id is empty): link it before going live.")
    migration_date = migration_date or go_live
    if migration_date is None:
        raise ValueError(f"billing entity {billing_entity_id} ({name}) has no xero_go_live_date: "
                         "give a migration_date or set the go-live date first.")
    scope = sync_state.RunScope([billing_entity_id], None, migration_date - dt.timedelta(days=1))
    run_id = sync_state.start_run(conn, kind="mock_export", dag_id=dag_id, airflow_run_id=airflow_run_id, scope=scope)
    sync_state.decide_entities(conn, run_id, [billing_entity_id])
    params = {"run_id": run_id, "billing_entity_id": billing_entity_id, "migration_date": migration_date}
    with conn.transaction():
        invoices = conn.execute(INVOICE.sql("mock_export"), {**params, "kind": INVOICE.name}).rowcount
        credit_notes = conn.execute(CREDIT_NOTE.sql("mock_export"), {**params, "kind": CREDIT_NOTE.name}).rowcount
        (already,) = conn.execute(
            "SELECT count(*) FROM xero_sync.astute_document d "
            "JOIN xero_sync.document_export x ON x.kind = d.kind AND x.document_id = d.document_id "
            "WHERE d.billing_entity_id = %s AND d.status = 'Sent' AND d.document_date < %s "
            "AND x.run_id IS DISTINCT FROM %s",
            (billing_entity_id, migration_date, run_id),
        ).fetchone()
        conn.execute(load_sql("mock_export_finish"), {"run_id": run_id})
    return MockExportResult(run_id, name, migration_date, invoices, credit_notes, already)


@dataclass(frozen=True)
class ResetResult:
    reset: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def reset_for_export(
    conn: psycopg.Connection,
    *,
    invoice_ids: list[int] | None = None,
    credit_note_ids: list[int] | None = None,
    billing_entity_id: int | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> ResetResult:
    """Make items go again in the next export. Anything not successfully exported can be reset, and an exported
    one that the status sync found gone from Xero (no longer held, voided or deleted there).

    By ids, or every Sent invoice and credit note of an entity in a date range.
    """
    if not invoice_ids and not credit_note_ids and billing_entity_id is None:
        raise ValueError("give invoice_ids or credit_note_ids, or billing_entity_id with date_from and date_to.")
    result = ResetResult()
    scope = {"billing_entity_id": billing_entity_id, "date_from": date_from, "date_to": date_to}
    with conn.transaction():
        for kind, ids in ((INVOICE, invoice_ids or []), (CREDIT_NOTE, credit_note_ids or [])):
            rows = conn.execute(load_sql("reset_targets"), {**scope, "kind": kind.name, "document_ids": ids}).fetchall()
            to_reset = []
            for item_id, number, tenant_id, status, xero_id, exported_at, gone_from_xero in rows:
                label = kind.describe(item_id, number)
                if status == "exported" and not gone_from_xero:
                    result.refused.append(
                        f"{label}: exported to Xero on {exported_at:%Y-%m-%d} (Xero id {xero_id}); "
                        "a successfully exported item cannot be reset (unless xero_status_sync finds it gone from "
                        "Xero: no longer held, voided or deleted there)"
                    )
                elif status == "sending":
                    result.refused.append(f"{label}: an export of it is in progress; reset it after that run ends")
                elif tenant_id is None:
                    result.refused.append(f"{label}: its billing entity is not linked to a Xero organisation")
                else:
                    to_reset.append((item_id, tenant_id))
                    result.reset.append(label)
            if to_reset:
                reset_ids, tenants = (list(column) for column in zip(*to_reset))
                if kind is CREDIT_NOTE:
                    conn.execute(load_sql("reset_forget_allocation"), {"document_ids": reset_ids})
                conn.execute(kind.sql("reset_apply"), {"document_ids": reset_ids, "tenant_ids": tenants})
                conn.execute(load_sql("drift_resolve_reset"), {"kind": kind.name, "document_ids": reset_ids})
            found = {row[0] for row in rows}
            result.refused.extend(f"{kind.label} id {i}: no Sent {kind.label.lower()} has this id"
                                  for i in ids if i not in found)
    return result


def remove_contact_links(conn: psycopg.Connection, *, customer_id: int, tenant_id: str | None = None) -> list[str]:
    """Forget a customer's Contact link(s); the next export finds or creates the Contact by name again."""
    with conn.transaction():
        removed = conn.execute(load_sql("contact_link_remove"), {"customer_id": customer_id, "tenant_id": tenant_id}).fetchall()
    return [f"organisation {tenant}: Contact '{name}' ({contact_id})" for tenant, contact_id, name in removed]
