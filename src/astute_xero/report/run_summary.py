"""What a run did, per billing entity, in words a finance team can read.

The run counts as Sent when anything went (the help article); a document (or an
allocation) left 'sending' means a call's outcome is still unknown and the run is not done.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import psycopg

from astute_xero.export.documents import CREDIT_NOTE, INVOICE, KINDS, DocumentKind
from astute_xero.sql import load_sql


@dataclass(frozen=True)
class DocumentNote:
    kind: str
    label: str
    reason: str


@dataclass
class EntityOutcome:
    billing_entity_id: int
    entity_name: str
    tenant_id: str | None
    decision: str
    detail: str | None
    exported: dict[str, int] = field(default_factory=lambda: {INVOICE.name: 0, CREDIT_NOTE.name: 0})
    failed: list[DocumentNote] = field(default_factory=list)
    held: list[DocumentNote] = field(default_factory=list)
    waiting: list[DocumentNote] = field(default_factory=list)  # credit notes whose invoice is not in Xero yet
    deferred: int = 0
    elsewhere: int = 0  # exported (or being exported) by another run meanwhile
    unfinished: int = 0  # 'sending' or never reached: a chunk task did not complete
    allocated: list[DocumentNote] = field(default_factory=list)
    not_allocated: list[DocumentNote] = field(default_factory=list)  # nothing to apply, or refused by Xero


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    status: str
    api_calls: int
    entities: list[EntityOutcome]

    def exported_of(self, kind: DocumentKind) -> int:
        return sum(e.exported[kind.name] for e in self.entities)

    @property
    def exported(self) -> int:
        return sum(sum(e.exported.values()) for e in self.entities)

    @property
    def failed(self) -> int:
        return sum(len(e.failed) for e in self.entities)

    def failed_of(self, kind: DocumentKind) -> int:
        return sum(1 for e in self.entities for note in e.failed if note.kind == kind.name)

    @property
    def held(self) -> int:
        return sum(len(e.held) for e in self.entities)

    @property
    def waiting(self) -> int:
        return sum(len(e.waiting) for e in self.entities)

    @property
    def allocated(self) -> int:
        return sum(len(e.allocated) for e in self.entities)

    @property
    def unfinished(self) -> int:
        return sum(e.unfinished for e in self.entities)


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
    for entity_id, kind_name, document_id, number, outcome, reason in conn.execute(
        load_sql("run_outcomes"), {"run_id": run_id}
    ):
        entity = entities[entity_id]
        counts[outcome] += 1
        note = DocumentNote(kind_name, KINDS[kind_name].describe(document_id, number), reason or "no reason recorded")
        if outcome == "exported":
            entity.exported[kind_name] += 1
        elif outcome == "failed":
            entity.failed.append(note)
        elif outcome == "held":
            entity.held.append(note)
        elif outcome == "waiting":
            entity.waiting.append(note)
        elif outcome == "deferred":
            entity.deferred += 1
        elif outcome == "elsewhere":
            entity.elsewhere += 1
        else:
            entity.unfinished += 1
    for entity_id, credit_note_id, number, status, amount, detail in conn.execute(
        load_sql("run_allocations"), {"run_id": run_id}
    ):
        entity = entities.get(entity_id)
        if entity is None:
            continue
        note = DocumentNote(CREDIT_NOTE.name, CREDIT_NOTE.describe(credit_note_id, number), detail or "")
        if status == "allocated":
            entity.allocated.append(note)
            counts["allocated"] += 1
        elif status == "sending":
            entity.unfinished += 1
            counts["sending"] += 1
        else:
            entity.not_allocated.append(note)
    if counts["exported"] or counts["allocated"]:
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
            {"run_id": run_id, "status": summary.status,
             "invoices_exported": summary.exported_of(INVOICE), "invoices_failed": summary.failed_of(INVOICE),
             "credit_notes_exported": summary.exported_of(CREDIT_NOTE),
             "credit_notes_failed": summary.failed_of(CREDIT_NOTE), "allocations_made": summary.allocated},
        )
    return summary


def render_summary(summary: RunSummary) -> str:
    lines = [
        f"Xero export run {summary.run_id}: {summary.status.replace('_', ' ').upper()} - "
        f"{summary.exported_of(INVOICE)} invoice(s) and {summary.exported_of(CREDIT_NOTE)} credit note(s) exported, "
        f"{summary.allocated} credit note(s) allocated, {summary.failed} failed, "
        f"{summary.held} held back by validation, {summary.waiting} waiting for their invoice, "
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
        lines.append(f"  Exported: {entity.exported[INVOICE.name]} invoice(s), {entity.exported[CREDIT_NOTE.name]} credit note(s)")
        for title, notes in (
            ("Failed in Xero", entity.failed),
            ("Held back by validation", entity.held),
            ("Credit notes waiting for their invoice", entity.waiting),
            ("Credit notes allocated", entity.allocated),
            ("Credit notes not allocated", entity.not_allocated),
        ):
            if notes or title in ("Failed in Xero", "Held back by validation"):
                lines.append(f"  {title}: {len(notes)}")
                lines.extend(f"    - {note.label}: {note.reason}" for note in notes)
        if entity.deferred:
            lines.append(f"  Left for the next run: {entity.deferred}")
        if entity.elsewhere:
            lines.append(f"  Exported by another run meanwhile: {entity.elsewhere}")
        if entity.unfinished:
            lines.append(f"  Not finished (a task failed; retry it): {entity.unfinished}")
    return "\n".join(lines)
