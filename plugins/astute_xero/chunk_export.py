"""Exporting one chunk of at most 100 invoices or credit notes: a protocol that is safe to repeat.

0. Credit notes whose invoice did not reach Xero wait for it: they go in the run that exports it.
1. Claim: the chunk's documents are marked 'sending' (committed) before Xero hears of them.
2. Reconcile: documents already 'sending' when claimed are ones whose earlier call had no recorded
   outcome (a timeout, a killed worker); Xero is asked which of them it has, and those are recorded
   as exported, never sent again.
3. Send the rest in one PUT /Invoices or /CreditNotes, summarizeErrors=false, unitdp=4, with an
   Idempotency-Key derived from the body, so that a replay within Xero's key window is answered,
   not acted on.
4. Record every per-document outcome and the api_log row in one transaction.
If the call's outcome is unknown, the claims stay 'sending' and the task fails for Airflow to retry;
the retry starts again at 1 and reconciles.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import psycopg
from xero_python.accounting import CreditNote, Invoice
from xero_python.api_client.serializer import serialize

from astute_xero import sync_state
from astute_xero.documents import CREDIT_NOTE, KINDS, DocumentKind
from astute_xero.mapping import (
    AstuteDocument,
    AstuteLine,
    Fingerprint,
    fingerprint,
    to_xero,
    xero_fingerprint,
    xero_id,
    xero_number,
)
from astute_xero.sql import load_sql
from astute_xero.xero_client import ApiCall, DailyLimitReached, XeroCallError, XeroClient

log = logging.getLogger(__name__)

XERO_BODY_LIMIT_BYTES = 3_500_000
CLOCK_SKEW = dt.timedelta(minutes=10)  # between our database's clock and Xero's


@dataclass(frozen=True)
class ChunkKey:
    """What crosses XCom for a chunk: where to find it, never the documents themselves."""

    run_id: int
    tenant_id: str
    kind: str  # a DocumentKind's name
    chunk_no: int
    chunk_count: int
    organisation: str

    @property
    def document_kind(self) -> DocumentKind:
        return KINDS[self.kind]

    @property
    def label(self) -> str:
        return f"{self.organisation} · {self.document_kind.plural} · chunk {self.chunk_no}/{self.chunk_count}"

    @property
    def params(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "tenant_id": self.tenant_id, "kind": self.kind, "chunk_no": self.chunk_no}


@dataclass(frozen=True)
class ChunkResult:
    exported: int
    failed: int
    reconciled: int
    skipped: int
    stopped: bool = False
    waiting: int = 0  # credit notes whose invoice is not in Xero: they wait for it


class ChunkOutcomeUnknown(RuntimeError):
    """Xero may or may not have acted: the task must be retried, and the retry reconciles first."""


def idempotency_key(kind: DocumentKind, tenant_id: str, document_ids: list[int], body: dict[str, Any]) -> str:
    """The same documents with the same content give the same key, so a repeat is answered, not acted on.

    The Astute ids are part of it: two unnumbered invoices can have identical content, and one must
    never be answered with the other's Xero invoice.
    """
    material = json.dumps([kind.name, tenant_id, document_ids, body], sort_keys=True)
    digest = hashlib.sha256(material.encode()).hexdigest()
    return f"astute-{kind.name}-{digest[:64]}"


def load_chunk(conn: psycopg.Connection, key: ChunkKey) -> list[AstuteDocument]:
    lines: dict[int, list[AstuteLine]] = defaultdict(list)
    for document_id, *line in conn.execute(load_sql("chunk_lines"), key.params):
        lines[document_id].append(AstuteLine(*line))
    return [
        AstuteDocument(
            kind=key.document_kind,
            document_id=row[0],
            number=row[1],
            reference=row[2],
            document_date=row[3],
            due_date=row[4],
            currency=row[5].strip(),
            line_amount_types=row[6],
            xero_contact_id=row[7],
            lines=tuple(lines[row[0]]),
        )
        for row in conn.execute(load_sql("chunk_documents"), key.params)
    ]


def export_chunk(conn: psycopg.Connection, client: XeroClient, key: ChunkKey) -> ChunkResult:
    if sync_state.tenant_stopped(conn, key.run_id, key.tenant_id):
        return ChunkResult(0, 0, 0, 0, stopped=True)
    kind = key.document_kind
    waiting = conn.execute(load_sql("credit_notes_waiting"), key.params).rowcount if kind is CREDIT_NOTE else 0
    documents = {document.document_id: document for document in load_chunk(conn, key)}
    locks = [row[0] for row in conn.execute(load_sql("chunk_lock_documents"), {"keys": kind.lock_keys(documents)})]
    try:
        exported, failed, reconciled, skipped, stopped = _export_locked(
            conn, client, key, documents, [kind.lock_sign * lock for lock in locks]
        )
    finally:
        conn.execute(load_sql("chunk_unlock_documents"), {"keys": locks})
    return ChunkResult(exported, failed, reconciled, skipped, stopped, waiting)


def _export_locked(
    conn: psycopg.Connection, client: XeroClient, key: ChunkKey, documents: dict[int, AstuteDocument], locked: list[int]
) -> tuple[int, int, int, int, bool]:
    """The protocol, for the documents this worker holds; the others are another live worker's.

    Returns (exported, failed, reconciled, skipped, stopped).
    """
    kind = key.document_kind
    with conn.transaction():
        state = {i: (status, at) for i, status, at in conn.execute(load_sql("chunk_export_state"), key.params)}
        previous = {i: state[i][0] for i in locked if i in state}
        claimed_at = {i: state[i][1] for i in locked if i in state and state[i][0] == "sending"}
        wanted = [i for i, status in previous.items() if status in (None, "failed", "reset", "sending")]
        claimed = {row[0] for row in conn.execute(kind.sql("chunk_claim"), {**key.params, "document_ids": wanted})}
    # Exported meanwhile, or in flight in another run: never sent from here.
    skipped = len(documents) - len(claimed)

    reconciled = _reconcile(conn, client, key, [documents[i] for i in sorted(claimed) if i in claimed_at], claimed_at)
    to_send = [documents[i] for i in sorted(claimed) if i not in reconciled]
    if not to_send:
        _finish(conn, key)
        return 0, 0, len(reconciled), skipped, False

    elements = [to_xero(document) for document in to_send]
    body = serialize({"Elements": elements})
    body_bytes = len(json.dumps(body).encode())
    if body_bytes > XERO_BODY_LIMIT_BYTES:
        # The planner's estimate is an upper bound, so this means a bug, not bad data: stop loudly.
        raise RuntimeError(f"chunk {key.label} is {body_bytes} bytes, over Xero's limit; the planner must split it")
    request_key = idempotency_key(kind, key.tenant_id, [d.document_id for d in to_send], body)
    try:
        answered, call = client.create_documents(kind, key.tenant_id, elements, request_key)
    except XeroCallError as error:
        if isinstance(error, DailyLimitReached) or error.call.http_status == 403:
            # Xero did nothing and will do nothing today (daily limit) or at all (the organisation is
            # no longer connected): release the claims, stop this organisation for the run, say why.
            with conn.transaction():
                sync_state.record_api_call(conn, key.run_id, error.call, chunk_no=key.chunk_no, item_count=len(to_send))
                conn.execute(
                    kind.sql("chunk_release"),
                    {"document_ids": [d.document_id for d in to_send],
                     "previous_statuses": [previous[d.document_id] for d in to_send]},
                )
            sync_state.stop_tenant(conn, key.run_id, key.tenant_id, stop_reason(error, key.tenant_id))
            return 0, 0, len(reconciled), skipped, True
        with conn.transaction():
            sync_state.record_api_call(conn, key.run_id, error.call, chunk_no=key.chunk_no, item_count=len(to_send))
            if error.outcome_known:
                # Refused as a whole (4xx): Xero created nothing; every document carries Xero's reason.
                _record_outcomes(conn, kind, [(d.document_id, "failed", None, str(error)) for d in to_send])
                _finish(conn, key)
        if error.outcome_known:
            return 0, len(to_send), len(reconciled), skipped, False
        raise ChunkOutcomeUnknown(
            f"{key.label}: {error}. Xero may have created some of these {len(to_send)} {kind.plural}; "
            "they stay 'sending' and the retry reconciles with Xero before sending anything."
        ) from None

    outcomes = _outcomes(to_send, answered)
    with conn.transaction():
        _record_outcomes(conn, kind, [(o["document_id"], o["status"], o.get("xero_id"), o.get("error")) for o in outcomes])
        sync_state.record_api_call(conn, key.run_id, call, chunk_no=key.chunk_no, item_count=len(to_send), outcome=outcomes)
        _finish(conn, key)
    exported = sum(1 for o in outcomes if o["status"] == "exported")
    return exported, len(outcomes) - exported, len(reconciled), skipped, False


def stop_reason(error: XeroCallError, tenant_id: str) -> str:
    """Why an organisation is stopped for the run: Xero's daily limit, or the app lost its connection (403)."""
    if isinstance(error, DailyLimitReached):
        return str(error)
    return (
        f"Xero refused access to organisation {tenant_id} ({error}): the Xero app is no longer connected to it. "
        "Re-connect the organisation in Xero; its invoices and credit notes wait for the next run."
    )


def _outcomes(sent: list[AstuteDocument], answered: list[Invoice | CreditNote]) -> list[dict[str, Any]]:
    """Xero answers element by element, in the order sent."""
    if len(answered) != len(sent):
        raise ChunkOutcomeUnknown(f"Xero answered {len(answered)} elements for {len(sent)} documents sent")
    outcomes = []
    for document, element in zip(sent, answered):
        errors = [e.message for e in element.validation_errors or [] if e.message]
        ok = (element.status_attribute_string or "OK") != "ERROR" and not element.has_errors and xero_id(element)
        if ok:
            outcomes.append({"document_id": document.document_id, "status": "exported", "xero_id": xero_id(element)})
        else:
            message = "; ".join(errors) or f"Xero refused the {document.kind.label.lower()} without a reason"
            outcomes.append({"document_id": document.document_id, "status": "failed", "error": f"Xero: {message}"})
    return outcomes


def _reconcile(
    conn: psycopg.Connection,
    client: XeroClient,
    key: ChunkKey,
    unknown: list[AstuteDocument],
    claimed_at: dict[int, dt.datetime],
) -> set[int]:
    """Which of these in-flight documents Xero already has; record them as exported.

    Numbered documents are looked up by number. Unnumbered ones are matched by content (contact,
    dates, currency, reference, every line) against what Xero has for those Contacts since the
    earlier claim, one Xero document per Astute document, never one that is already linked.
    """
    if not unknown:
        return set()
    kind = key.document_kind
    found: list[Invoice | CreditNote] = []
    calls: list[tuple[ApiCall, list[AstuteDocument]]] = []
    numbered = {document.number: document for document in unknown if document.number}
    if numbered:
        by_number, call = client.documents_by_number(kind, key.tenant_id, list(numbered))
        found.extend(by_number)
        calls.append((call, list(numbered.values())))
    unnumbered = [document for document in unknown if not document.number]
    if unnumbered:
        since = min(claimed_at[d.document_id] for d in unnumbered) - CLOCK_SKEW
        contacts = sorted({d.xero_contact_id for d in unnumbered})
        recent, recent_calls = client.documents_since(kind, key.tenant_id, contacts, since)
        found.extend(recent)
        calls.extend((call, unnumbered if page == 0 else []) for page, call in enumerate(recent_calls))

    live = [x for x in found if getattr(x.status, "value", x.status) not in ("DELETED", "VOIDED")]
    already_linked = {
        str(row[0])
        for row in conn.execute(
            "SELECT xero_id FROM xero_sync.document_export WHERE kind = %s AND xero_id = ANY(%s::uuid[])",
            (kind.name, [xero_id(x) for x in live]),
        )
    }
    matches: dict[int, str] = {}
    for number, document in numbered.items():
        hit = next((x for x in live if xero_number(x) == number), None)
        if hit is not None:
            matches[document.document_id] = xero_id(hit)
    candidates: dict[Fingerprint, list[str]] = defaultdict(list)
    for x in live:
        if xero_id(x) not in already_linked:
            candidates[xero_fingerprint(x)].append(xero_id(x))
    for document in unnumbered:
        pool = candidates.get(fingerprint(document))
        if pool:
            matches[document.document_id] = pool.pop(0)

    def outcomes_of(group: list[AstuteDocument]) -> list[dict[str, Any]]:
        return [
            {"document_id": d.document_id, "status": "exported", "xero_id": matches[d.document_id], "reconciled": True}
            for d in group
            if d.document_id in matches
        ]

    outcomes = outcomes_of(unknown)
    with conn.transaction():
        _record_outcomes(conn, kind, [(o["document_id"], "exported", o["xero_id"], None) for o in outcomes])
        # Each lookup's api_log row carries the matches it found (the first page of a paged one).
        for call, group in calls:
            sync_state.record_api_call(
                conn, key.run_id, call, chunk_no=key.chunk_no, item_count=len(group), outcome=outcomes_of(group)
            )
    if outcomes:
        log.info("%s: %d %s were already in Xero from an earlier attempt; recorded, not re-sent",
                 key.label, len(outcomes), kind.plural)
    return set(matches)


def _record_outcomes(
    conn: psycopg.Connection, kind: DocumentKind, rows: list[tuple[int, str, str | None, str | None]]
) -> None:
    if not rows:
        return
    ids, statuses, xero_ids, errors = (list(column) for column in zip(*rows))
    conn.execute(
        kind.sql("chunk_record_outcomes"),
        {"document_ids": ids, "statuses": statuses, "xero_ids": xero_ids, "errors": errors},
    )


def _finish(conn: psycopg.Connection, key: ChunkKey) -> None:
    conn.execute(
        load_sql("chunk_finish"),
        {"run_id": key.run_id, "tenant_id": key.tenant_id, "chunk_no": key.chunk_no, "status": "done"},
    )
