"""Exporting one chunk of at most 100 invoices or credit notes: a protocol that is safe to repeat.

0. Credit notes whose invoice did not reach Xero wait for it: they go in the run that exports it.
1. Lease and claim: the worker takes a lease on each document (renewed while it works, lost within a minute if
   the worker dies: see astute_xero.leases), and marks them 'sending' (committed) before Xero hears of them.
2. Reconcile: documents already 'sending' when claimed are ones whose earlier call had no recorded
   outcome (a timeout, a killed worker); Xero is asked which of them it has, and those are recorded
   as exported, never sent again.
3. Send the rest in one PUT /Invoices or /CreditNotes, summarizeErrors=false, unitdp=4, with an
   Idempotency-Key derived from the body, so that a replay within Xero's key window is answered,
   not acted on. The moment the request leaves (after the token, the organisation's call slot and
   its minute budget are taken) is stamped on the documents, fenced by their leases.
4. Record every per-document outcome and the api_log row in one transaction; then look up the
   numbers Xero said were taken (our own copy of an earlier attempt is adopted).
If the call's outcome is unknown, the claims stay 'sending' and the task fails for Airflow to retry;
the retry starts again at 1 and reconciles.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from xero_python.accounting import CreditNote, Invoice
from xero_python.api_client.serializer import serialize

from astute_xero import leases
from astute_xero.export import sync_state
from astute_xero.export.documents import CREDIT_NOTE, INVOICE, KINDS, DocumentKind
from astute_xero.export.mapping import AstuteDocument, AstuteLine, to_xero, xero_id
from astute_xero.export.reconciliation import PriorAttempt, Verdict, judge
from astute_xero.sql import load_sql
from astute_xero.xero.client import ApiCall, XeroCallError, XeroClient

log = logging.getLogger(__name__)

XERO_BODY_LIMIT_BYTES = 3_500_000
CLOCK_SKEW = dt.timedelta(minutes=10)  # between our database's clock and Xero's
DUPLICATE_NUMBER = "must be unique"  # Xero: "Invoice # must be unique." / "Credit Note # must be unique."
DEFAULT_INVOICE_URL = "https://astute.invalid/invoices/{invoice_id}"


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
    held: int = 0  # documents that cannot be sent as they are (held back with their reason)


class ChunkOutcomeUnknown(RuntimeError):
    """Xero may or may not have acted: the task must be retried, and the retry reconciles first."""


class ChunkMustWait(RuntimeError):
    """Nothing was sent: an earlier call may still land at Xero after the time this attempt has left, or this
    worker lost its leases on the documents. The task is retried; the retry waits or finds them settled."""


def idempotency_key(
    kind: DocumentKind, tenant_id: str, document_ids: list[int], body: dict[str, Any], generations: list[dt.datetime]
) -> str:
    """The same documents with the same content give the same key, so a repeat is answered, not acted on.

    The Astute ids are part of it: two unnumbered invoices can have identical content, and one must
    never be answered with the other's Xero invoice. So is each document's export generation (its first
    claim): a document reset after its Xero copy went (a restore, a deletion) is a new export, which
    Xero must act on, not answer with the copy that is gone.
    """
    material = json.dumps([kind.name, tenant_id, document_ids, [g.isoformat() for g in generations], body],
                          sort_keys=True)
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


def export_chunk(
    conn: psycopg.Connection, client: XeroClient, key: ChunkKey, *, invoice_url: str | None = None,
    lease_ttl: dt.timedelta = leases.DOCUMENT_TTL,
) -> ChunkResult:
    """`invoice_url`: the template of an invoice's Url in Xero (see `invoice_url_template`); `lease_ttl`: how long
    a lease on a document outlives its holder's last heartbeat."""
    if sync_state.tenant_stopped(conn, key.run_id, key.tenant_id):
        return ChunkResult(0, 0, 0, 0, stopped=True)
    kind = key.document_kind
    waiting = conn.execute(load_sql("credit_notes_waiting"), key.params).rowcount if kind is CREDIT_NOTE else 0
    documents = {document.document_id: document for document in load_chunk(conn, key)}
    holder = leases.new_holder()
    lease_keys = kind.lease_keys(documents)
    # Documents another live worker holds (another run's chunk) are left to it; a dead worker's leases expire.
    taken = leases.acquire_waiting(conn, holder, lease_keys, lease_ttl)
    with leases.Heartbeat(conn, holder, taken, lease_ttl):
        result = _export_held(conn, client, key, documents, sorted(lease_keys[k] for k in taken), holder,
                              invoice_url or invoice_url_template())
    return replace(result, waiting=waiting)


def invoice_url_template() -> str:
    """The Url an invoice carries to Xero: where Xero's "Go to Astute" link points, and our identity there.

    ASTUTE_INVOICE_URL, with {invoice_id} for the Astute invoice's id.
    """
    template = os.environ.get("ASTUTE_INVOICE_URL", DEFAULT_INVOICE_URL)
    if "{invoice_id}" not in template or not template.startswith(("https://", "http://")):
        raise ValueError(
            f"ASTUTE_INVOICE_URL must be an http(s) URL with {{invoice_id}} in it (got {template!r}); "
            f"for example {DEFAULT_INVOICE_URL}"
        )
    return template


def source_url(kind: DocumentKind, document_id: int, template: str) -> str | None:
    """An invoice's identity in Xero. Credit notes have none: Xero's CreditNote has no Url."""
    return template.format(invoice_id=document_id) if kind is INVOICE else None


@dataclass(frozen=True)
class Payload:
    element: Invoice | CreditNote  # what the SDK sends
    serialized: Any  # the element as the SDK serializes it: the body's size and the Idempotency-Key are read from it


def _payloads(
    kind: DocumentKind, documents: list[AstuteDocument], prior: dict[int, PriorAttempt], template: str
) -> tuple[dict[int, Payload], dict[int, str]]:
    """Each document's Xero payload, built before anything is claimed; and why a document has none.

    The SDK checks Xero's field limits as it builds a model: a document it refuses is held back with the
    reason, and its neighbours go.
    """
    built: dict[int, Payload] = {}
    refused: dict[int, str] = {}
    for document in documents:
        url = prior[document.document_id].source_url or source_url(kind, document.document_id, template)
        try:
            element = to_xero(document, url)
            serialized = serialize(element)
        except (ValueError, TypeError) as error:
            refused[document.document_id] = (
                f"{kind.describe(document.document_id, document.number)} cannot be sent to Xero as it is: {error}. "
                "Correct it in Astute; it goes with the next run."
            )
            continue
        built[document.document_id] = Payload(element, serialized)
    return built, refused


def _export_held(
    conn: psycopg.Connection,
    client: XeroClient,
    key: ChunkKey,
    documents: dict[int, AstuteDocument],
    held: list[int],
    holder: str,
    template: str,
) -> ChunkResult:
    """The protocol, for the documents this worker holds leases on; the others are another live worker's."""
    kind = key.document_kind
    prior = {
        i: PriorAttempt(status, first_claimed_at, last_sent_at, url)
        for i, status, first_claimed_at, last_sent_at, url in conn.execute(load_sql("chunk_export_state"), key.params)
    }
    wanted = [i for i in held if i in prior and prior[i].status in (None, "failed", "reset", "sending")]
    _wait_for_earlier_calls(conn, client, key, wanted)

    payloads, refused = _payloads(kind, [documents[i] for i in wanted], prior, template)
    if refused:
        _hold(conn, key, refused)
    with conn.transaction():
        claimed = dict(
            conn.execute(
                kind.sql("chunk_claim"),
                {**key.params, "document_ids": sorted(payloads),
                 "source_urls": [getattr(payloads[i].element, "url", None) for i in sorted(payloads)]},
            ).fetchall()
        )
    # Exported meanwhile, or in flight in another run: never sent from here.
    skipped = len(documents) - len(claimed) - len(refused)
    result = ChunkResult(0, 0, 0, skipped, held=len(refused))

    attempted = [(documents[i], prior[i]) for i in sorted(claimed) if prior[i].attempted]
    try:
        verdicts = _reconcile(conn, client, key, attempted)
    except XeroCallError as error:  # a look-up failed: nothing was sent in this attempt
        if _release(conn, key, error, sorted(claimed), prior):
            return replace(result, stopped=True)
        raise
    reconciled = {i for i, verdict in verdicts.items() if verdict.xero_id}
    blocked = {i: verdict.conflict for i, verdict in verdicts.items() if verdict.conflict}
    if blocked:
        with conn.transaction():
            _record_outcomes(conn, kind, [(i, "failed", None, reason) for i, reason in blocked.items()])
    result = replace(result, failed=len(blocked), reconciled=len(reconciled))
    to_send = [documents[i] for i in sorted(claimed) if i not in reconciled and i not in blocked]
    if not to_send:
        _finish(conn, key)
        return result

    elements = [payloads[document.document_id].element for document in to_send]
    body = {"Elements": [payloads[document.document_id].serialized for document in to_send]}  # as the SDK sends it
    body_bytes = len(json.dumps(body).encode())
    if body_bytes > XERO_BODY_LIMIT_BYTES:
        # The planner's estimate is an upper bound, so this means a bug, not bad data: stop loudly.
        raise RuntimeError(f"chunk {key.label} is {body_bytes} bytes, over Xero's limit; the planner must split it")
    send_ids = [d.document_id for d in to_send]
    request_key = idempotency_key(kind, key.tenant_id, send_ids, body, [claimed[i] for i in send_ids])

    def stamp_leaving() -> None:
        """Called by the client right before it writes the request (each attempt): the late-commit window starts
        now, and only while this worker still holds every document's lease."""
        stamped = conn.execute(
            kind.sql("chunk_mark_sent"),
            {"document_ids": send_ids, "lease_keys": list(kind.lease_keys(send_ids)), "holder": holder},
        ).rowcount
        if stamped != len(send_ids):
            raise ChunkMustWait(f"{key.label}: this worker no longer holds its leases on these {kind.plural} (it "
                                "stalled past their time-to-live, and another worker may have taken them over); "
                                "nothing was sent, the retry finds out what became of them")

    try:
        answered, call = client.create_documents(kind, key.tenant_id, elements, request_key, on_send=stamp_leaving)
    except XeroCallError as error:
        if error.refused:
            # Refused as a whole for what it says (a 4xx): Xero created nothing; each document carries the reason.
            with conn.transaction():
                sync_state.record_api_call(conn, key.run_id, error.call, chunk_no=key.chunk_no, item_count=len(to_send))
                _record_outcomes(conn, kind, [(i, "failed", None, str(error)) for i in send_ids])
                _finish(conn, key)
            return replace(result, failed=result.failed + len(to_send))
        if error.outcome_known:  # Xero certainly did nothing (403, a daily or minute limit, 401, 404)
            if _release(conn, key, error, send_ids, prior):
                return replace(result, stopped=True)
            raise XeroCallError(f"{key.label}: {error}; nothing was created, the retry sends them", error.call,
                                outcome_known=True) from None
        with conn.transaction():
            sync_state.record_api_call(conn, key.run_id, error.call, chunk_no=key.chunk_no, item_count=len(to_send))
        raise ChunkOutcomeUnknown(
            f"{key.label}: {error}. Xero may have created some of these {len(to_send)} {kind.plural}; "
            "they stay 'sending' and the retry reconciles with Xero before sending anything."
        ) from None

    # What Xero answered, with the call's api_log row, in one transaction: nothing Xero created is left 'sending'.
    outcomes = _outcomes(to_send, answered)
    with conn.transaction():
        sync_state.record_api_call(conn, key.run_id, call, chunk_no=key.chunk_no, item_count=len(to_send), outcome=outcomes)
        _record_outcomes(conn, kind, [(o["document_id"], o["status"], o.get("xero_id"), o.get("error")) for o in outcomes])
    outcomes = _explain_duplicate_numbers(conn, client, key, to_send, prior, outcomes)
    _finish(conn, key)
    exported = sum(1 for o in outcomes if o["status"] == "exported")
    adopted = sum(1 for o in outcomes if o.get("reconciled"))
    return replace(result, exported=exported - adopted, failed=result.failed + len(outcomes) - exported,
                   reconciled=result.reconciled + adopted)


def _wait_for_earlier_calls(conn: psycopg.Connection, client: XeroClient, key: ChunkKey, document_ids: list[int]) -> None:
    """An earlier call that carried these documents may still be committing at Xero: our client gave up
    on its answer (a timeout, a dropped connection, a gateway's 5xx) or its worker died mid-call. Looking
    now could miss what it is about to create, and sending again would create it twice: wait until that
    call can no longer land (our read timeout and a margin after it left; never longer). Measured on the
    database's clock, which stamped when it left: the worker's clock may differ.
    """
    if not document_ids:
        return
    (seconds,) = conn.execute(
        key.document_kind.sql("chunk_late_commit_wait"),
        {"document_ids": document_ids, "window": client.late_commit_window},
    ).fetchone()
    if not seconds or seconds <= 0:
        return
    left = client.time_left()
    if left is not None and seconds > left:
        raise ChunkMustWait(
            f"{key.label}: an earlier call carrying some of these {key.document_kind.plural} may still land at Xero "
            f"for another {seconds:.0f} s, longer than this attempt has left ({left:.0f} s); nothing was sent, the "
            "retry waits for it and then looks for them in Xero"
        )
    log.info("%s: an earlier call carrying some of these %s may still land at Xero; waiting %.0f s before looking "
             "for them", key.label, key.document_kind.plural, seconds)
    time.sleep(seconds)


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
            outcomes.append({"document_id": document.document_id, "status": "failed", "error": f"Xero: {message}",
                             "duplicate_number": any(DUPLICATE_NUMBER in e for e in errors)})
    return outcomes


def _explain_duplicate_numbers(
    conn: psycopg.Connection,
    client: XeroClient,
    key: ChunkKey,
    sent: list[AstuteDocument],
    prior: dict[int, PriorAttempt],
    outcomes: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Xero refused some numbers as taken (recorded as failed with Xero's words): look them up. Our own copy (an
    earlier call that landed unseen) is adopted; anything else is named in the failure, so finance knows what
    Xero holds. If the look-up fails, they stay failed with Xero's words, and the next run looks again."""
    by_id = {d.document_id: d for d in sent}
    taken = [(by_id[o["document_id"]], prior[o["document_id"]]) for o in outcomes if o.get("duplicate_number")]
    if not taken:
        return outcomes
    try:
        verdicts = _reconcile(conn, client, key, taken)
    except XeroCallError as error:
        with conn.transaction():
            sync_state.record_api_call(conn, key.run_id, error.call, chunk_no=key.chunk_no, item_count=len(taken))
        reason = error.organisation_stop_reason()
        if reason:
            sync_state.stop_tenant(conn, key.run_id, key.tenant_id, reason)
        log.warning("%s: could not look up the %d number(s) Xero said were taken (%s); they stay failed with Xero's "
                    "reason and the next run looks again", key.label, len(taken), error)
        return outcomes
    explained = []
    conflicts = []
    for outcome in outcomes:
        verdict = verdicts.get(outcome["document_id"])
        if verdict and verdict.xero_id:
            outcome = {"document_id": outcome["document_id"], "status": "exported", "xero_id": verdict.xero_id,
                       "reconciled": True}
        elif verdict and verdict.conflict:
            outcome = {**outcome, "error": f"{verdict.conflict} ({outcome['error']})"}
            conflicts.append((outcome["document_id"], "failed", None, outcome["error"]))
        explained.append(outcome)
    with conn.transaction():
        _record_outcomes(conn, key.document_kind, conflicts)
    return explained


def _reconcile(
    conn: psycopg.Connection,
    client: XeroClient,
    key: ChunkKey,
    attempted: list[tuple[AstuteDocument, PriorAttempt]],
) -> dict[int, Verdict]:
    """Look for these documents in Xero (an earlier call may have created them); adopt what is ours.

    Numbered documents are looked up by number (every type comes back: see reconciliation.judge);
    unnumbered ones among what Xero has for their Contacts since their first claim (whichever Xero app
    made them). Adopted documents are recorded as exported, with the api_log rows of the lookups.
    """
    if not attempted:
        return {}
    kind = key.document_kind
    found: list[Invoice | CreditNote] = []
    calls: list[tuple[ApiCall, list[AstuteDocument]]] = []
    numbered = [document for document, _ in attempted if document.number]
    if numbered:
        by_number, call = client.documents_by_number(kind, key.tenant_id, sorted({d.number for d in numbered}))
        found.extend(by_number)
        calls.append((call, numbered))
    unnumbered = [(document, prior) for document, prior in attempted if not document.number]
    if unnumbered:
        since = min(prior.first_claimed_at for _, prior in unnumbered) - CLOCK_SKEW
        contacts = sorted({d.xero_contact_id for d, _ in unnumbered})
        recent, recent_calls = client.documents_since(kind, key.tenant_id, contacts, since)
        found.extend(recent)
        calls.extend((call, [d for d, _ in unnumbered] if page == 0 else []) for page, call in enumerate(recent_calls))

    ids = [i for i in {xero_id(x) for x in found} if i]
    linked_elsewhere = {
        str(xero): kind.describe(document_id, number)
        for xero, document_id, number in conn.execute(load_sql("documents_linked_to"), {"kind": kind.name, "xero_ids": ids})
        if document_id not in {d.document_id for d, _ in attempted}
    }
    verdicts = judge(attempted, found, linked_elsewhere)

    def outcomes_of(group: list[AstuteDocument]) -> list[dict[str, Any]]:
        return [
            {"document_id": d.document_id, "status": "exported", "xero_id": verdicts[d.document_id].xero_id,
             "reconciled": True}
            for d in group
            if verdicts[d.document_id].xero_id
        ]

    adopted = outcomes_of([d for d, _ in attempted])
    with conn.transaction():
        _record_outcomes(conn, kind, [(o["document_id"], "exported", o["xero_id"], None) for o in adopted])
        # Each lookup's api_log row carries the matches it found (the first page of a paged one).
        for call, group in calls:
            sync_state.record_api_call(
                conn, key.run_id, call, chunk_no=key.chunk_no, item_count=len(group), outcome=outcomes_of(group)
            )
    if adopted:
        log.info("%s: %d %s were already in Xero from an earlier attempt; recorded, not re-sent",
                 key.label, len(adopted), kind.plural)
    return verdicts


def _release(
    conn: psycopg.Connection, key: ChunkKey, error: XeroCallError, document_ids: list[int],
    prior: dict[int, PriorAttempt],
) -> bool:
    """A call Xero certainly did not act on: put these claims back as they were, with the call's api_log row.

    When the failure is the organisation's own (403: disconnected; its daily limit; Xero still failing),
    stop the organisation for the run with that reason and return True; otherwise the task is retried.
    """
    with conn.transaction():
        sync_state.record_api_call(conn, key.run_id, error.call, chunk_no=key.chunk_no, item_count=len(document_ids))
        conn.execute(
            key.document_kind.sql("chunk_release"),
            {"document_ids": document_ids, "previous_statuses": [prior[i].status for i in document_ids]},
        )
    reason = error.organisation_stop_reason()
    if reason:
        sync_state.stop_tenant(conn, key.run_id, key.tenant_id, reason)
    return reason is not None


def _hold(conn: psycopg.Connection, key: ChunkKey, reasons: dict[int, str]) -> None:
    """Documents that cannot be sent as they are: held back for the run with their reason."""
    ids = sorted(reasons)
    with conn.transaction():
        conn.execute(
            load_sql("hold_documents"),
            {"run_id": key.run_id, "kind": key.kind, "document_ids": ids, "rule": "payload_refused",
             "messages": [reasons[i] for i in ids]},
        )
    log.warning("%s: %d %s held back, not sent: %s", key.label, len(ids), key.document_kind.plural,
                "; ".join(reasons[i] for i in ids))


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
