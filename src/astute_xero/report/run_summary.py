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
    unfinished_chunks: set[tuple[str, int]] = field(default_factory=set)  # (kind, chunk number) of those documents
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
    for entity_id, kind_name, document_id, number, outcome, reason, chunk_no in conn.execute(
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
            if chunk_no is not None:
                entity.unfinished_chunks.add((kind_name, chunk_no))
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


def finish_run(conn: psycopg.Connection, run_id: int, *, previewed: bool = False) -> RunSummary:
    """Close the run: its status and counts written to export_run. A preview sends nothing: it is 'previewed'."""
    summary = summarise_run(conn, run_id)
    if previewed:
        summary = RunSummary(run_id, "previewed", summary.api_calls, summary.entities)
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
            lines.append(f"  Not finished (a task failed; retry it): {entity.unfinished}{_in_chunks(entity)}")
    return "\n".join(lines)


def _in_chunks(entity: EntityOutcome) -> str:
    """Which chunks the unfinished documents are in, as the export's lanes name them in their logs."""
    if not entity.unfinished_chunks:
        return ""
    named = [f"{KINDS[kind].plural} chunk {number}" for kind, number in sorted(entity.unfinished_chunks)]
    return f", in {', '.join(named)} (the lane whose log names the chunk failed: clear it to retry)"


# --- a preview (the export DAG's Param `preview`): what an export would send, hold back and leave ---------------


@dataclass(frozen=True)
class ContactPlan:
    """What the export would do for one customer's Contact in one organisation (xero_sync.preview_contact)."""

    action: str  # export.preview: CREATE, MATCH, RENAME, RELINK
    tenant_id: str
    customer_id: int
    astute_name: str
    xero_contact_name: str | None
    xero_contact_id: str | None

    def describe(self) -> str:
        who = f"customer {self.customer_id}"
        if self.action == "create":
            return f"create '{self.astute_name}' ({who})"
        if self.action == "match":
            return f"link {who} '{self.astute_name}' to its existing Contact '{self.xero_contact_name}'"
        if self.action == "rename":
            return f"rename '{self.xero_contact_name}' to '{self.astute_name}' ({who}, renamed in Astute)"
        return f"move {who}'s link to '{self.xero_contact_name}', which its Contact was merged into in Xero"


@dataclass(frozen=True)
class PreviewedHold:
    """A document the export would hold back, with every reason and the rules they come from (what to fix)."""

    kind: str
    document_id: int
    label: str
    reason: str
    rules: tuple[str, ...]

    @property
    def fixes(self) -> list[str]:
        from astute_xero.report.fixes import fix_for

        return [f"{fix.title}: {fix.where}" for fix in map(fix_for, self.rules)]


@dataclass
class EntityPlan:
    """What a preview found for one billing entity."""

    billing_entity_id: int
    invoices: int  # would go
    credit_notes: int  # would go
    chunks: int  # of the organisation's chunks, those holding this entity's documents: one API call each
    held: int
    waiting: int
    deferred: int  # selected, but past the run's room
    not_selected: int  # in the run's window, but no room to select them this run
    held_documents: list[PreviewedHold] = field(default_factory=list)
    contacts: list[ContactPlan] = field(default_factory=list)

    @property
    def would_go(self) -> int:
        return self.invoices + self.credit_notes

    @property
    def left_for_later(self) -> int:
        return self.deferred + self.not_selected

    def contacts_doing(self, action: str) -> list[ContactPlan]:
        return [c for c in self.contacts if c.action == action]


def preview_plans(
    conn: psycopg.Connection, run_id: int, date_from, date_to, billing_entity_id: int | None = None
) -> dict[int, EntityPlan]:
    """Per billing entity the preview exports (or the one asked for), what it found. Reads only."""
    params = {"run_id": run_id, "billing_entity_id": billing_entity_id, "date_from": date_from, "date_to": date_to}
    plans = {row[0]: EntityPlan(*row) for row in conn.execute(load_sql("preview_entity_plan"), params)}
    for entity_id, kind_name, document_id, number, reason, rules in conn.execute(load_sql("preview_held"), params):
        if entity_id in plans:
            plans[entity_id].held_documents.append(PreviewedHold(
                kind_name, document_id, KINDS[kind_name].describe(document_id, number), reason, tuple(rules)))
    for entity_id, *contact in conn.execute(load_sql("preview_contacts"), params):
        if entity_id in plans:
            plans[entity_id].contacts.append(ContactPlan(*contact))
    return plans


@dataclass(frozen=True)
class PreviewSummary:
    run_id: int
    api_calls: int  # the preview's own calls to Xero: reads only
    chunks: int  # every organisation's planned chunks: the calls that would send them
    entities: list[tuple[EntityOutcome, EntityPlan | None]]  # None: skipped
    left_for_later: dict[str, str]  # per organisation, where its day at Xero stands (backlog.OrganisationBacklog)

    def _plans(self) -> list[EntityPlan]:
        return [plan for _, plan in self.entities if plan is not None]

    def would_go_of(self, kind: DocumentKind) -> int:
        return sum(p.invoices if kind is INVOICE else p.credit_notes for p in self._plans())

    @property
    def would_go(self) -> int:
        return sum(p.would_go for p in self._plans())

    @property
    def held(self) -> int:
        return sum(p.held for p in self._plans())

    @property
    def waiting(self) -> int:
        return sum(p.waiting for p in self._plans())

    @property
    def contacts_to_create(self) -> int:
        """Contacts the export would create: one per organisation and name (customers of one name share it)."""
        from astute_xero.export.contacts import name_key

        return len({(c.tenant_id, name_key(c.astute_name)) for p in self._plans() for c in p.contacts_doing("create")})

    @property
    def contacts_to_rename(self) -> int:
        return len({(c.tenant_id, c.xero_contact_id) for p in self._plans() for c in p.contacts_doing("rename")})


def summarise_preview(
    conn: psycopg.Connection, run_id: int, date_from, date_to, left_for_later: dict[str, str] | None = None
) -> PreviewSummary:
    """What a preview found, read from xero_sync (changes nothing). `left_for_later`: per organisation, where its
    day at Xero stands, in words (backlog.OrganisationBacklog.budget)."""
    summary = summarise_run(conn, run_id)
    plans = preview_plans(conn, run_id, date_from, date_to)
    (chunks,) = conn.execute("SELECT count(*) FROM xero_sync.export_chunk WHERE run_id = %s", (run_id,)).fetchone()
    return PreviewSummary(run_id, summary.api_calls, chunks,
                          [(entity, plans.get(entity.billing_entity_id)) for entity in summary.entities],
                          left_for_later or {})


def render_preview(summary: PreviewSummary) -> str:
    lines = [
        f"Xero export PREVIEW run {summary.run_id} - nothing was written to Xero. An export now would send "
        f"{summary.would_go_of(INVOICE)} invoice(s) and {summary.would_go_of(CREDIT_NOTE)} credit note(s) in "
        f"{summary.chunks} chunk(s) ({summary.chunks} API call(s), one API-log row each), create "
        f"{summary.contacts_to_create} Contact(s) and rename {summary.contacts_to_rename}; "
        f"{summary.held} would be held back, {summary.waiting} credit note(s) would wait for their invoice. "
        f"The preview made {summary.api_calls} Xero API call(s), reads only.",
    ]
    for entity, plan in summary.entities:
        lines.append("")
        header = f"{entity.entity_name} (billing entity {entity.billing_entity_id})"
        if plan is None:
            lines.append(f"{header}: SKIPPED - {entity.detail}")
            continue
        lines.append(f"{header} -> Xero organisation {entity.tenant_id}")
        if entity.decision == "stopped":
            lines.append(f"  STOPPED: {entity.detail} (nothing of it would go now)")
        lines.append(f"  Would go: {plan.invoices} invoice(s), {plan.credit_notes} credit note(s) in {plan.chunks} "
                     "chunk(s) (one API call and one API-log row each)")
        for action, title in (("create", "Contacts that would be created"), ("rename", "Contacts that would be renamed"),
                              ("match", "Customers that would be linked to an existing Contact"),
                              ("relink", "Links that would follow a merge in Xero")):
            contacts = plan.contacts_doing(action)
            if contacts or action in ("create", "rename"):
                lines.append(f"  {title}: {len(contacts)}")
                lines.extend(f"    - {contact.describe()}" for contact in contacts)
        lines.append(f"  Would be held back: {len(plan.held_documents)}")
        for held in plan.held_documents:
            lines.append(f"    - {held.label}: {held.reason}")
            lines.extend(f"      What to fix: {fix}" for fix in held.fixes)
        if entity.waiting:
            lines.append(f"  Credit notes that would wait for their invoice: {len(entity.waiting)}")
            lines.extend(f"    - {note.label}: {note.reason}" for note in entity.waiting)
        if plan.left_for_later:
            why = summary.left_for_later.get(entity.tenant_id or "")
            lines.append(f"  Left for later runs: {plan.left_for_later} (a run sends no more than its share of Airflow's "
                         f"map limit and what is left of the organisation's day at Xero{': ' + why if why else ''}; "
                         "the export's continue_backlog triggers the runs that send them)")
    return "\n".join(lines)
