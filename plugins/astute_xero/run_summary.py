"""What a run did, per billing entity, in words a finance team can read.

The run counts as Sent when any invoice went (the help article); an invoice
left 'sending' means a chunk's outcome is still unknown and the run is not done.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import psycopg

from astute_xero.sql import load_sql


@dataclass(frozen=True)
class InvoiceNote:
    label: str
    reason: str


@dataclass
class EntityOutcome:
    billing_entity_id: int
    entity_name: str
    tenant_id: str | None
    decision: str
    detail: str | None
    exported: int = 0
    failed: list[InvoiceNote] = field(default_factory=list)
    held: list[InvoiceNote] = field(default_factory=list)
    deferred: int = 0
    elsewhere: int = 0  # exported (or being exported) by another run meanwhile
    unfinished: int = 0  # 'sending' or never reached: a chunk task did not complete


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    status: str
    api_calls: int
    entities: list[EntityOutcome]

    @property
    def exported(self) -> int:
        return sum(e.exported for e in self.entities)

    @property
    def failed(self) -> int:
        return sum(len(e.failed) for e in self.entities)

    @property
    def held(self) -> int:
        return sum(len(e.held) for e in self.entities)

    @property
    def unfinished(self) -> int:
        return sum(e.unfinished for e in self.entities)


def invoice_label(invoice_id: int, invoice_number: str | None) -> str:
    return f"Invoice {invoice_number}" if invoice_number else f"Invoice id {invoice_id} (no number)"


def summarise_run(conn: psycopg.Connection, run_id: int) -> RunSummary:
    """What the run did, read from xero_sync (changes nothing)."""
    entities = {
        row[0]: EntityOutcome(*row)
        for row in conn.execute(
            "SELECT billing_entity_id, entity_name, tenant_id, decision, detail FROM xero_sync.run_entity "
            "WHERE run_id = %s ORDER BY billing_entity_id",
            (run_id,),
        )
    }
    counts: dict[str, int] = defaultdict(int)
    for entity_id, invoice_id, number, outcome, reason in conn.execute(load_sql("run_outcomes"), {"run_id": run_id}):
        entity = entities[entity_id]
        counts[outcome] += 1
        if outcome == "exported":
            entity.exported += 1
        elif outcome == "failed":
            entity.failed.append(InvoiceNote(invoice_label(invoice_id, number), reason or "no reason recorded"))
        elif outcome == "held":
            entity.held.append(InvoiceNote(invoice_label(invoice_id, number), reason or "no reason recorded"))
        elif outcome == "deferred":
            entity.deferred += 1
        elif outcome == "elsewhere":
            entity.elsewhere += 1
        else:
            entity.unfinished += 1
    if counts["exported"]:
        status = "sent"
    elif counts["failed"] or counts["sending"] or counts["not_sent"]:
        status = "failed"
    else:
        status = "nothing_to_send"
    (api_calls,) = conn.execute("SELECT count(*) FROM xero_sync.api_log WHERE run_id = %s", (run_id,)).fetchone()
    return RunSummary(run_id, status, api_calls, list(entities.values()))


def finish_run(conn: psycopg.Connection, run_id: int) -> RunSummary:
    """Close the run: its status and counts written to export_run."""
    summary = summarise_run(conn, run_id)
    with conn.transaction():
        conn.execute(
            load_sql("run_finish"),
            {"run_id": run_id, "status": summary.status, "exported": summary.exported, "failed": summary.failed},
        )
    return summary


def render_summary(summary: RunSummary) -> str:
    lines = [
        f"Xero export run {summary.run_id}: {summary.status.replace('_', ' ').upper()} - "
        f"{summary.exported} exported, {summary.failed} failed, {summary.held} held back by validation, "
        f"{summary.api_calls} Xero API call(s)",
    ]
    for entity in summary.entities:
        lines.append("")
        header = f"{entity.entity_name} (billing entity {entity.billing_entity_id})"
        if entity.decision.startswith("skipped"):
            lines.append(f"{header}: SKIPPED - {entity.detail}")
            continue
        lines.append(f"{header} -> Xero organisation {entity.tenant_id}")
        if entity.decision == "stopped":
            lines.append(f"  STOPPED: {entity.detail}")
        lines.append(f"  Exported: {entity.exported}")
        lines.append(f"  Failed in Xero: {len(entity.failed)}")
        lines.extend(f"    - {note.label}: {note.reason}" for note in entity.failed)
        lines.append(f"  Held back by validation: {len(entity.held)}")
        lines.extend(f"    - {note.label}: {note.reason}" for note in entity.held)
        if entity.deferred:
            lines.append(f"  Left for the next run: {entity.deferred}")
        if entity.elsewhere:
            lines.append(f"  Exported by another run meanwhile: {entity.elsewhere}")
        if entity.unfinished:
            lines.append(f"  Not finished (a chunk task failed; retry it): {entity.unfinished}")
    return "\n".join(lines)
