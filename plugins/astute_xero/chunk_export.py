"""Exporting one chunk of at most 100 invoices: a protocol that is safe to repeat.

1. Claim: the chunk's invoices are marked 'sending' (committed) before Xero hears of them.
2. Reconcile: invoices already 'sending' when claimed are ones whose earlier call had no recorded
   outcome (a timeout, a killed worker); Xero is asked which of them it has, and those are recorded
   as exported, never sent again.
3. Send the rest in one PUT /Invoices, summarizeErrors=false, unitdp=4, with an Idempotency-Key
   derived from the body, so that a replay within Xero's key window is answered, not acted on.
4. Record every per-invoice outcome and the api_log row in one transaction.
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
from xero_python.accounting import Invoice
from xero_python.api_client.serializer import serialize

from astute_xero import sync_state
from astute_xero.mapping import (
    AstuteInvoice,
    AstuteLine,
    Fingerprint,
    fingerprint,
    to_xero_invoice,
    xero_fingerprint,
)
from astute_xero.sql import load_sql
from astute_xero.xero_client import ApiCall, DailyLimitReached, XeroCallError, XeroClient

log = logging.getLogger(__name__)

XERO_BODY_LIMIT_BYTES = 3_500_000
CLOCK_SKEW = dt.timedelta(minutes=10)  # between our database's clock and Xero's


@dataclass(frozen=True)
class ChunkKey:
    """What crosses XCom for a chunk: where to find it, never the invoices themselves."""

    run_id: int
    tenant_id: str
    chunk_no: int
    chunk_count: int
    organisation: str

    @property
    def label(self) -> str:
        return f"{self.organisation} · chunk {self.chunk_no}/{self.chunk_count}"


@dataclass(frozen=True)
class ChunkResult:
    exported: int
    failed: int
    reconciled: int
    skipped: int
    stopped: bool = False


class ChunkOutcomeUnknown(RuntimeError):
    """Xero may or may not have acted: the task must be retried, and the retry reconciles first."""


def idempotency_key(tenant_id: str, invoice_ids: list[int], body: dict[str, Any]) -> str:
    """The same invoices with the same content give the same key, so a repeat is answered, not acted on.

    The Astute ids are part of it: two unnumbered invoices can have identical content, and one must
    never be answered with the other's Xero invoice.
    """
    material = json.dumps([tenant_id, invoice_ids, body], sort_keys=True)
    digest = hashlib.sha256(material.encode()).hexdigest()
    return f"astute-inv-{digest[:64]}"


def load_chunk(conn: psycopg.Connection, key: ChunkKey) -> list[AstuteInvoice]:
    params = {"run_id": key.run_id, "tenant_id": key.tenant_id, "chunk_no": key.chunk_no}
    lines: dict[int, list[AstuteLine]] = defaultdict(list)
    for invoice_id, *line in conn.execute(load_sql("chunk_lines"), params):
        lines[invoice_id].append(AstuteLine(*line))
    return [
        AstuteInvoice(
            invoice_id=row[0],
            invoice_number=row[1],
            reference=row[2],
            invoice_date=row[3],
            due_date=row[4],
            currency=row[5].strip(),
            line_amount_types=row[6],
            xero_contact_id=row[7],
            lines=tuple(lines[row[0]]),
        )
        for row in conn.execute(load_sql("chunk_invoices"), params)
    ]


def export_chunk(conn: psycopg.Connection, client: XeroClient, key: ChunkKey) -> ChunkResult:
    if sync_state.tenant_stopped(conn, key.run_id, key.tenant_id):
        return ChunkResult(0, 0, 0, 0, stopped=True)
    invoices = {invoice.invoice_id: invoice for invoice in load_chunk(conn, key)}
    locked = [row[0] for row in conn.execute(load_sql("chunk_lock_invoices"), {"invoice_ids": list(invoices)})]
    try:
        return _export_locked(conn, client, key, invoices, locked)
    finally:
        conn.execute(load_sql("chunk_unlock_invoices"), {"invoice_ids": locked})


def _export_locked(
    conn: psycopg.Connection, client: XeroClient, key: ChunkKey, invoices: dict[int, AstuteInvoice], locked: list[int]
) -> ChunkResult:
    """The protocol, for the invoices this worker holds; the others are another live worker's."""
    params = {"run_id": key.run_id, "tenant_id": key.tenant_id, "chunk_no": key.chunk_no}
    with conn.transaction():
        state = {i: (status, updated_at) for i, status, updated_at in conn.execute(load_sql("chunk_export_state"), params)}
        previous = {i: state[i][0] for i in locked if i in state}
        claimed_at = {i: state[i][1] for i in locked if i in state and state[i][0] == "sending"}
        wanted = [i for i, status in previous.items() if status in (None, "failed", "reset", "sending")]
        claimed = {row[0] for row in conn.execute(load_sql("chunk_claim"), {**params, "invoice_ids": wanted})}
    # Exported meanwhile, or in flight in another run: never sent from here.
    skipped = len(invoices) - len(claimed)

    reconciled = _reconcile(conn, client, key, [invoices[i] for i in sorted(claimed) if i in claimed_at], claimed_at)
    to_send = [invoices[i] for i in sorted(claimed) if i not in reconciled]
    if not to_send:
        _finish(conn, key)
        return ChunkResult(0, 0, len(reconciled), skipped)

    xero_invoices = [to_xero_invoice(invoice) for invoice in to_send]
    body = serialize({"Invoices": xero_invoices})
    body_bytes = len(json.dumps(body).encode())
    if body_bytes > XERO_BODY_LIMIT_BYTES:
        # The planner's estimate is an upper bound, so this means a bug, not bad data: stop loudly.
        raise RuntimeError(f"chunk {key.label} is {body_bytes} bytes, over Xero's limit; the planner must split it")
    request_key = idempotency_key(key.tenant_id, [i.invoice_id for i in to_send], body)
    try:
        answered, call = client.create_invoices(key.tenant_id, xero_invoices, request_key)
    except XeroCallError as error:
        if isinstance(error, DailyLimitReached) or error.call.http_status == 403:
            # Xero did nothing and will do nothing today (daily limit) or at all (the organisation is
            # no longer connected): release the claims, stop this organisation for the run, say why.
            reason = str(error) if isinstance(error, DailyLimitReached) else (
                f"Xero refused access to organisation {key.tenant_id} ({error}): the Xero app is no longer "
                "connected to it. Re-connect the organisation in Xero; its invoices wait for the next run."
            )
            with conn.transaction():
                sync_state.record_api_call(conn, key.run_id, error.call, chunk_no=key.chunk_no, item_count=len(to_send))
                conn.execute(
                    load_sql("chunk_release"),
                    {"invoice_ids": [i.invoice_id for i in to_send],
                     "previous_statuses": [previous[i.invoice_id] for i in to_send]},
                )
            sync_state.stop_tenant(conn, key.run_id, key.tenant_id, reason)
            return ChunkResult(0, 0, len(reconciled), skipped, stopped=True)
        with conn.transaction():
            sync_state.record_api_call(conn, key.run_id, error.call, chunk_no=key.chunk_no, item_count=len(to_send))
            if error.outcome_known:
                # Refused as a whole (4xx): Xero created nothing; every invoice carries Xero's reason.
                _record_outcomes(conn, [(i.invoice_id, "failed", None, str(error)) for i in to_send])
                _finish(conn, key)
        if error.outcome_known:
            return ChunkResult(0, len(to_send), len(reconciled), skipped)
        raise ChunkOutcomeUnknown(
            f"{key.label}: {error}. Xero may have created some of these {len(to_send)} invoices; "
            "they stay 'sending' and the retry reconciles with Xero before sending anything."
        ) from None

    outcomes = _outcomes(to_send, answered)
    with conn.transaction():
        _record_outcomes(conn, [(o["invoice_id"], o["status"], o.get("xero_invoice_id"), o.get("error")) for o in outcomes])
        sync_state.record_api_call(conn, key.run_id, call, chunk_no=key.chunk_no, item_count=len(to_send), outcome=outcomes)
        _finish(conn, key)
    exported = sum(1 for o in outcomes if o["status"] == "exported")
    return ChunkResult(exported, len(outcomes) - exported, len(reconciled), skipped)


def _outcomes(sent: list[AstuteInvoice], answered: list[Invoice]) -> list[dict[str, Any]]:
    """Xero answers element by element, in the order sent."""
    if len(answered) != len(sent):
        raise ChunkOutcomeUnknown(f"Xero answered {len(answered)} elements for {len(sent)} invoices sent")
    outcomes = []
    for invoice, element in zip(sent, answered):
        errors = [e.message for e in element.validation_errors or [] if e.message]
        ok = (element.status_attribute_string or "OK") != "ERROR" and not element.has_errors and element.invoice_id
        if ok:
            outcomes.append(
                {"invoice_id": invoice.invoice_id, "status": "exported", "xero_invoice_id": str(element.invoice_id)}
            )
        else:
            message = "; ".join(errors) or "Xero refused the invoice without a reason"
            outcomes.append({"invoice_id": invoice.invoice_id, "status": "failed", "error": f"Xero: {message}"})
    return outcomes


def _reconcile(
    conn: psycopg.Connection,
    client: XeroClient,
    key: ChunkKey,
    unknown: list[AstuteInvoice],
    claimed_at: dict[int, dt.datetime],
) -> set[int]:
    """Which of these in-flight invoices Xero already has; record them as exported.

    Numbered invoices are looked up by number. Unnumbered ones are matched by content (contact,
    dates, currency, reference, every line) against what this app created for those Contacts since
    the earlier claim, one Xero invoice per Astute invoice, never one that is already linked.
    """
    if not unknown:
        return set()
    found: list[Invoice] = []
    calls: list[tuple[ApiCall, list[AstuteInvoice]]] = []
    numbered = {invoice.invoice_number: invoice for invoice in unknown if invoice.invoice_number}
    if numbered:
        by_number, call = client.invoices_by_number(key.tenant_id, list(numbered))
        found.extend(by_number)
        calls.append((call, list(numbered.values())))
    unnumbered = [invoice for invoice in unknown if not invoice.invoice_number]
    if unnumbered:
        since = min(claimed_at[i.invoice_id] for i in unnumbered) - CLOCK_SKEW
        recent, recent_calls = client.invoices_since(key.tenant_id, sorted({i.xero_contact_id for i in unnumbered}), since)
        found.extend(recent)
        calls.extend((call, unnumbered if page == 0 else []) for page, call in enumerate(recent_calls))

    live = [x for x in found if getattr(x.status, "value", x.status) not in ("DELETED", "VOIDED")]
    already_linked = {
        str(row[0])
        for row in conn.execute(
            "SELECT xero_invoice_id FROM xero_sync.invoice_export WHERE xero_invoice_id = ANY(%s::uuid[])",
            ([str(x.invoice_id) for x in live],),
        )
    }
    matches: dict[int, str] = {}
    for number, invoice in numbered.items():
        hit = next((x for x in live if x.invoice_number == number), None)
        if hit is not None:
            matches[invoice.invoice_id] = str(hit.invoice_id)
    candidates: dict[Fingerprint, list[str]] = defaultdict(list)
    for x in live:
        if str(x.invoice_id) not in already_linked:
            candidates[xero_fingerprint(x)].append(str(x.invoice_id))
    for invoice in unnumbered:
        pool = candidates.get(fingerprint(invoice))
        if pool:
            matches[invoice.invoice_id] = pool.pop(0)

    def outcomes_of(group: list[AstuteInvoice]) -> list[dict[str, Any]]:
        return [
            {"invoice_id": i.invoice_id, "status": "exported", "xero_invoice_id": matches[i.invoice_id], "reconciled": True}
            for i in group
            if i.invoice_id in matches
        ]

    outcomes = outcomes_of(unknown)
    with conn.transaction():
        _record_outcomes(conn, [(o["invoice_id"], "exported", o["xero_invoice_id"], None) for o in outcomes])
        # Each lookup's api_log row carries the matches it found (the first page of a paged one).
        for call, group in calls:
            sync_state.record_api_call(
                conn, key.run_id, call, chunk_no=key.chunk_no, item_count=len(group), outcome=outcomes_of(group)
            )
    if outcomes:
        log.info("%s: %d invoice(s) were already in Xero from an earlier attempt; recorded, not re-sent", key.label, len(outcomes))
    return set(matches)


def _record_outcomes(conn: psycopg.Connection, rows: list[tuple[int, str, str | None, str | None]]) -> None:
    if not rows:
        return
    ids, statuses, xero_ids, errors = (list(column) for column in zip(*rows))
    conn.execute(
        load_sql("chunk_record_outcomes"),
        {"invoice_ids": ids, "statuses": statuses, "xero_invoice_ids": xero_ids, "errors": errors},
    )


def _finish(conn: psycopg.Connection, key: ChunkKey) -> None:
    conn.execute(
        load_sql("chunk_finish"),
        {"run_id": key.run_id, "tenant_id": key.tenant_id, "chunk_no": key.chunk_no, "status": "done"},
    )
