"""Credit notes allocated to the invoices they credit (PUT /CreditNotes/{id}/Allocations), exactly once.

After a run's credit-note chunks, each credit note in Xero whose Astute invoice is in Xero too is
allocated to it, organisation by organisation, in batches:

1. Read the credit notes and their invoices as Xero has them now (remaining credit, existing
   allocations, amount due), one GET each per batch.
2. A credit note that Xero already shows allocated to its invoice (an earlier attempt whose answer
   was lost, or a person in Xero) is recorded as allocated and never allocated again.
3. The amount is what Xero allows: no more than the credit note's remaining credit and the
   invoice's amount due. Nothing left to apply is recorded with its reason, not sent.
4. Claim ('sending', committed), then PUT with an Idempotency-Key, then the outcome and its api_log
   row in one transaction. An unknown outcome stays 'sending' and fails the task for Airflow to
   retry; the retry starts again at 1.

Organisations go side by side (allocate_tenant), and within one organisation up to its concurrency (5)
at once: a batch's reads go together, then its allocations, each invoice's in turn on one caller (two
credit notes of one invoice share its amount due: the second is decided from what the first left), the
invoices side by side. A later batch reads Xero afresh, after the one before it is done.

Xero refusing the app access to
one (403: disconnected), its spent daily limit, or Xero failing for it (a read still failing after
the client's retries, an allocation answered 5xx) stops that organisation for the run with its
reason and its api_log row; the others carry on. What is left of it waits for the next run, which
reads Xero first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
from xero_python.accounting import Allocation, CreditNote, Invoice

from astute_xero import leases
from astute_xero.export import organisations, sync_state
from astute_xero.export.documents import CREDIT_NOTE, INVOICE
from astute_xero.export.reconciliation import is_history_copy
from astute_xero.sql import load_sql
from astute_xero.xero.client import ApiCall, XeroCallError, XeroClient

log = logging.getLogger(__name__)

CREDIT_NOTES_PER_BATCH = 40  # one `where` of ids per GET: keeps the URL well under limits
CENT = Decimal("0.01")


@dataclass(frozen=True)
class PendingAllocation:
    credit_note_id: int
    credit_note_number: str | None
    xero_credit_note_id: str
    credit_date: dt.date
    invoice_id: int
    invoice_number: str | None
    invoice_date: dt.date
    xero_invoice_id: str | None  # None: history mock-exported at go-live, found in Xero by its number

    @property
    def credit_note_label(self) -> str:
        return CREDIT_NOTE.describe(self.credit_note_id, self.credit_note_number)

    @property
    def invoice_label(self) -> str:
        return INVOICE.describe(self.invoice_id, self.invoice_number)


@dataclass(frozen=True)
class AllocationSummary:
    allocated: int = 0
    nothing: int = 0
    failed: int = 0
    organisations_stopped: int = 0


class AllocationUnfinished(RuntimeError):
    """Allocations left for Airflow's retry (Xero not ready for them yet, or not answering); every other
    organisation's are done. The retry reads Xero first, so nothing is allocated twice."""


class AllocationOutcomeUnknown(AllocationUnfinished):
    """Xero may or may not have allocated: the task must be retried, and the retry reads Xero first."""


def allocation_amount(remaining_credit: Decimal, amount_due: Decimal) -> Decimal:
    """What Xero allows: never more than the credit left on the credit note or the amount due on the invoice."""
    return max(Decimal("0"), min(remaining_credit, amount_due)).quantize(CENT)


def allocate_run(
    conn: psycopg.Connection, client: XeroClient, run_id: int, each: organisations.Runner | None = None
) -> AllocationSummary:
    """Every organisation of the run (side by side when `each` says so); one organisation's trouble is that
    organisation's."""
    each = each or organisations.one_by_one(conn, client)
    tenants = sync_state.exporting_tenants(conn, run_id)
    outcomes = each(tenants, lambda organisation: allocate_tenant(organisation, run_id))
    organisations.raise_unexpected(outcomes, XeroCallError)
    totals = {"allocated": 0, "nothing": 0, "failed": 0, "stopped": 0}
    unknown: list[str] = []
    later: list[str] = []
    for (tenant_id, organisation), outcome in zip(tenants, outcomes):
        if isinstance(outcome, XeroCallError):  # not the organisation's own trouble (no answer, a minute limit): retry
            log.warning("organisation %s (%s): allocations left for the retry: %s", organisation, tenant_id, outcome)
            later.append(f"{organisation}: {outcome}")
            continue
        for status, count in outcome.counts.items():
            totals[status] += count
        totals["stopped"] += outcome.stopped
        unknown.extend(outcome.unknown)
        later.extend(outcome.later)
    if unknown:
        raise AllocationOutcomeUnknown(
            f"{len(unknown)} allocation(s) got no answer from Xero ({'; '.join(unknown[:5])}); they stay 'sending' "
            "and the retry reads the credit notes back from Xero before allocating anything."
            + (f" Also left for the retry: {'; '.join(later[:5])}." if later else "")
        )
    if later:
        raise AllocationUnfinished(
            f"left for Airflow's retry, which reads Xero before allocating anything: {'; '.join(later[:5])}"
            + (f" and {len(later) - 5} more" if len(later) > 5 else "") + "."
        )
    return AllocationSummary(totals["allocated"], totals["nothing"], totals["failed"], totals["stopped"])


@dataclass
class TenantAllocations:
    """What one organisation's allocation step did (added to from each of its callers' threads)."""

    counts: dict[str, int] = field(default_factory=lambda: {"allocated": 0, "nothing": 0, "failed": 0})
    unknown: list[str] = field(default_factory=list)  # no answer: 'sending', the retry reads Xero first
    later: list[str] = field(default_factory=list)  # Xero did nothing yet (a transient 404): claim put back
    stopped: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, pending: PendingAllocation, status: str) -> None:
        with self._lock:
            if status == "unknown":
                self.unknown.append(pending.credit_note_label)
            elif status == "later":
                self.later.append(pending.credit_note_label)
            elif status != "claimed elsewhere":
                self.counts[status] += 1


def allocate_tenant(organisation: organisations.Organisation, run_id: int) -> TenantAllocations:
    """One organisation's allocations, in batches.

    Its 403, spent daily limit or failing Xero (a 5xx after the client's retries, or on an allocation)
    stops it for the run with the reason (the failed call's api_log row is written where it fails);
    anything else raises, for Airflow's retry.
    """
    conn, tenant_id = organisation.conn, organisation.tenant_id
    outcome = TenantAllocations()
    if sync_state.tenant_stopped(conn, run_id, tenant_id):
        return outcome
    after = 0
    try:
        while True:
            batch = [
                PendingAllocation(*row)
                for row in conn.execute(
                    load_sql("allocations_to_make"),
                    {"tenant_id": tenant_id, "after_credit_note_id": after, "batch_size": CREDIT_NOTES_PER_BATCH},
                )
            ]
            if not batch:
                break
            after = batch[-1].credit_note_id
            # Credit notes another live worker is allocating (another run) are left to it; a dead one's leases expire.
            holder = leases.new_holder()
            lease_keys = CREDIT_NOTE.lease_keys(p.credit_note_id for p in batch)
            taken = leases.acquire(conn, holder, lease_keys, leases.DOCUMENT_TTL)
            with leases.Heartbeat(conn, holder, taken, leases.DOCUMENT_TTL):
                held = {lease_keys[k] for k in taken}
                _allocate_batch(organisation, run_id, [p for p in batch if p.credit_note_id in held], outcome)
    except XeroCallError as error:
        reason = error.organisation_stop_reason()
        if reason is None:
            raise
        sync_state.stop_tenant(conn, run_id, tenant_id, reason)
        log.warning("organisation %s (%s) stopped for this run: %s", organisation.label, tenant_id, reason)
        outcome.stopped = True
    log.info("organisation %s (%s): %d allocated, %d with nothing to apply, %d refused%s",
             organisation.label, tenant_id, outcome.counts["allocated"], outcome.counts["nothing"],
             outcome.counts["failed"], " (stopped)" if outcome.stopped else "")
    return outcome


def _allocate_batch(
    organisation: organisations.Organisation, run_id: int, batch: list[PendingAllocation], outcome: TenantAllocations,
) -> None:
    """Raises XeroCallError when Xero fails for the organisation (its api_log row written)."""
    if not batch:
        return
    tenant_id = organisation.tenant_id
    credit_notes, invoices = _read_from_xero(organisation, run_id, batch)

    # Each invoice's credit notes in turn, on one caller: two credit notes can credit one invoice, and the second
    # gets only what the first left of its amount due. Different invoices go at once.
    by_invoice: dict[int, list[PendingAllocation]] = defaultdict(list)
    for pending in batch:
        by_invoice[pending.invoice_id].append(pending)

    def allocate_to_invoice(conn: psycopg.Connection, client: XeroClient, credits: list[PendingAllocation]) -> None:
        invoice = invoices.get(credits[0].invoice_id)
        still_due = _money(invoice.amount_due) if invoice is not None else None
        for pending in credits:
            credit_note = credit_notes.get(pending.xero_credit_note_id.lower())
            decided = _decide(pending, credit_note, invoice, still_due)
            if decided is not None:
                status, amount, allocation_id, detail = decided
                _record(conn, run_id, pending, status, amount, allocation_id, detail)
                outcome.add(pending, status)
                continue
            remaining = _money(credit_note.remaining_credit)
            amount = allocation_amount(remaining, still_due)
            with conn.transaction():
                claimed = conn.execute(load_sql("allocation_claim"),
                                       {"run_id": run_id, "credit_note_id": pending.credit_note_id}).fetchone()
            if claimed is None:
                outcome.add(pending, "claimed elsewhere")  # allocated by another run meanwhile
                continue
            status = _send(conn, client, run_id, tenant_id, pending, str(invoice.invoice_id), amount, remaining - amount)
            outcome.add(pending, status)
            if status == "allocated":
                still_due -= amount

    organisation.at_once(allocate_to_invoice, list(by_invoice.values()))


def _read_from_xero(
    organisation: organisations.Organisation, run_id: int, batch: list[PendingAllocation]
) -> tuple[dict[str, CreditNote], dict[int, Invoice]]:
    """The batch's credit notes (by Xero id) and invoices (by Astute id) as Xero has them now: up to three GETs,
    at once."""
    tenant_id = organisation.tenant_id
    by_id = {p.xero_invoice_id.lower(): p.invoice_id for p in batch if p.xero_invoice_id}
    by_number = {p.invoice_number: p.invoice_id for p in batch if not p.xero_invoice_id and p.invoice_number}
    reads: list[tuple[str, Callable[[XeroClient], tuple[list[Any], ApiCall]], int]] = [
        ("credit notes", lambda client: client.credit_notes_by_id(tenant_id, [p.xero_credit_note_id for p in batch]),
         len(batch)),
    ]
    if by_id:
        reads.append(("invoices", lambda client: client.invoices_by_id(tenant_id, sorted(by_id)), len(by_id)))
    if by_number:
        reads.append(("numbered", lambda client: client.documents_by_number(INVOICE, tenant_id, sorted(by_number)),
                      len(by_number)))

    def read(conn: psycopg.Connection, client: XeroClient, what: tuple) -> tuple[str, list[Any]]:
        name, send, item_count = what
        try:
            found, call = send(client)
        except XeroCallError as error:
            sync_state.record_api_call(conn, run_id, error.call, item_count=item_count)
            raise
        sync_state.record_api_call(conn, run_id, call, item_count=item_count)
        return name, found

    found = dict(organisation.at_once(read, reads))
    credit_notes = {str(cn.credit_note_id).lower(): cn for cn in found["credit notes"]}
    invoices: dict[int, Invoice] = {}
    invoices.update({by_id[str(i.invoice_id).lower()]: i for i in found.get("invoices", [])
                     if str(i.invoice_id).lower() in by_id})
    # Sales invoices only: the number look-up also returns supplier bills, whose numbers Xero does not
    # keep unique against ours (reconciliation.is_history_copy).
    invoices.update({by_number[i.invoice_number]: i for i in found.get("numbered", [])
                     if i.invoice_number in by_number and is_history_copy(i)})
    return credit_notes, invoices


def _decide(
    pending: PendingAllocation, credit_note: CreditNote | None, invoice: Invoice | None, due: Decimal | None
) -> tuple[str, Decimal | None, str | None, str] | None:
    """The outcome when Xero's state settles it without a call: (status, amount, allocation id, detail)."""
    if credit_note is None:
        return ("failed", None, None, f"{pending.credit_note_label} is no longer in Xero (deleted there?); "
                "nothing was allocated. Check the credit note in Xero.")
    if invoice is None:
        where = "by its number" if not pending.xero_invoice_id else "any more"
        return ("failed", None, None, f"{pending.invoice_label}, which it credits, could not be found in Xero {where}; "
                f"allocate {pending.credit_note_label} by hand in Xero.")
    earlier = [a for a in credit_note.allocations or []
               if a.invoice and str(a.invoice.invoice_id).lower() == str(invoice.invoice_id).lower()]
    if earlier:
        amount = sum((_money(a.amount) for a in earlier), Decimal("0"))
        allocation_id = str(earlier[0].allocation_id) if earlier[0].allocation_id else None
        return ("allocated", amount, allocation_id, "found allocated in Xero (an earlier attempt, or by hand)")
    credit_status = getattr(credit_note.status, "value", credit_note.status)
    invoice_status = getattr(invoice.status, "value", invoice.status)
    remaining = _money(credit_note.remaining_credit)
    if credit_status != "AUTHORISED" or remaining <= 0:
        return ("nothing", Decimal("0"), None, f"{pending.credit_note_label} has no credit left in Xero "
                f"(status {credit_status}, remaining credit {remaining}); nothing to allocate.")
    if invoice_status != "AUTHORISED" or due <= 0:
        return ("nothing", Decimal("0"), None, f"{pending.invoice_label}, which it credits, has nothing left to pay in Xero "
                f"(status {invoice_status}, amount due {due}); the credit stays on the customer's account in Xero.")
    return None


def _send(
    conn: psycopg.Connection, client: XeroClient, run_id: int, tenant_id: str, pending: PendingAllocation,
    xero_invoice_id: str, amount: Decimal, credit_left: Decimal,
) -> str:
    """One PUT /CreditNotes/{id}/Allocations; returns 'allocated', 'failed', 'unknown' (no answer) or 'later' (a
    transient 404); raises XeroCallError, its api_log row written, for anything the organisation or the
    task must stop on."""
    allocation_date = max(pending.credit_date, pending.invoice_date)
    allocation = Allocation(invoice=Invoice(invoice_id=xero_invoice_id), amount=float(amount), date=allocation_date)
    key = "astute-allocation-" + hashlib.sha256(
        f"{tenant_id}|{pending.xero_credit_note_id}|{xero_invoice_id}|{amount}".encode()
    ).hexdigest()[:64]
    try:
        answered, call = client.allocate_credit_note(tenant_id, pending.xero_credit_note_id, allocation, key)
    except XeroCallError as error:
        with conn.transaction():
            sync_state.record_api_call(conn, run_id, error.call, item_count=1)
            if error.refused:  # Xero's final word on this allocation
                _record(conn, run_id, pending, "failed", None, None,
                        f"Xero refused to allocate {amount} to {pending.invoice_label}: {error}")
                return "failed"
            if error.outcome_known:  # Xero did nothing (403, a limit, a 404): put the claim back
                _record(conn, run_id, pending, None, None, None, None)
        if error.call.http_status == 404:
            # Xero sometimes answers 404 for a credit note or invoice it created moments ago: not a refusal.
            # Left for Airflow's retry, which reads Xero first.
            return "later"
        if error.call.http_status is None:
            return "unknown"  # no answer: stays 'sending'; the retry reads Xero before allocating again
        # The organisation's trouble (403, daily limit, a 5xx whose outcome is unknown: stays 'sending' and the
        # next run reads Xero first) stops it; anything else (a minute limit that persisted) is for the retry.
        raise

    errors = [e.message for e in (answered.validation_errors if answered else None) or [] if e.message]
    ok = answered is not None and not errors and answered.status_attribute_string != "ERROR"
    result: dict[str, Any] = {"credit_note_id": pending.credit_note_id, "invoice_id": pending.invoice_id,
                              "amount": str(amount)}
    with conn.transaction():
        if ok:
            allocation_id = str(answered.allocation_id) if answered.allocation_id else None
            left = f"; {credit_left} stays as credit on the customer's account" if credit_left > 0 else ""
            _record(conn, run_id, pending, "allocated", amount, allocation_id,
                    f"{amount} allocated to {pending.invoice_label}{left}")
            result.update(status="allocated", allocation_id=allocation_id)
        else:
            reason = "; ".join(errors) or "Xero refused the allocation without a reason"
            _record(conn, run_id, pending, "failed", None, None,
                    f"Xero refused to allocate {amount} to {pending.invoice_label}: {reason}")
            result.update(status="failed", error=reason)
        sync_state.record_api_call(conn, run_id, call, item_count=1, outcome=[result])
    return "allocated" if ok else "failed"


def _record(
    conn: psycopg.Connection, run_id: int, pending: PendingAllocation, status: str | None, amount: Decimal | None,
    allocation_id: str | None, detail: str | None,
) -> None:
    conn.execute(
        load_sql("allocation_record"),
        {"run_id": run_id, "credit_note_id": pending.credit_note_id, "status": status, "amount": amount,
         "allocation_id": allocation_id, "detail": detail},
    )


def _money(value: object) -> Decimal:
    return Decimal(str(value if value is not None else 0)).quantize(CENT)
