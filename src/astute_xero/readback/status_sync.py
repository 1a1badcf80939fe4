"""Reading back from one Xero organisation what happened to the exported documents, and what disagrees.

Incremental: only what changed since the newest change of that kind the last successful read saw, less a minute
(If-Modified-Since, UTC to the second; a mark per kind, so an invoice changed while credit notes are read is read
next time), a page of 1,000 at a time (Xero's largest), oldest change first, page after page by keyset (a
document changing during the read skips none), every call paced within the organisation's budget (shared with
the export: the same pacer). Each page goes to xero_sync.xero_document in one COPY and
one set-based upsert, written on the sync's connection by a thread of its own while the call for the next page
is on the wire (one page behind at most), so a million documents stream through without being held and the
writing hides behind Xero's time. A full reconciliation reads
every document instead, and is the only read that can tell that Xero no longer holds one: what no page brought
is asked for by id first.

Which documents are ours does not depend on the Xero app that reads them (an organisation may move to a new
app or a Custom Connection): every sales invoice is read, and kept when Astute exported it (its Xero id is in
xero_sync) or when it carries an Astute invoice's link as its Url (one unknown to Astute is drift); credit
notes, which have no Url, when Astute exported them. Invoices keyed in by hand go through the page's scratch
table and no further. Credit notes are read when the organisation has any Astute exported (an organisation
without ours costs no call), and always by a full reconciliation.

Drift (xero_sync.drift) is recorded once while it lasts, with what to do, and resolved when a later sync finds
Astute and Xero agreeing again (every open drift is looked at again each sync, against both sides as they are
now); nothing is ever changed on either side to make them agree. An incremental sync compares with Astute the
documents whose side of the comparison Xero changed (not a payment), noted by sync number (a sequence, not a
clock) since the last sync to finish; a full reconciliation compares every document.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter
from typing import Any

import psycopg

from astute_xero.export.chunk_export import invoice_url_template
from astute_xero.export.documents import CREDIT_NOTE, INVOICE, DocumentKind
from astute_xero.export.reconciliation import astute_url_matcher
from astute_xero.export.sync_state import record_api_call
from astute_xero.sql import load_sql
from astute_xero.xero.client import READ_PAGE_SIZE, ApiCall, XeroClient, enum_value

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncOutcome:
    tenant_id: str
    full: bool
    full_because: str  # why this read was full ("" when incremental): asked, first read, or due by the schedule
    full_postponed: str  # why a full read due by the schedule waits for another day ("" when not)
    calls: int
    documents_read: int
    documents_changed: int
    drift_found: int
    drift_resolved: int


def sync_organisation(conn: psycopg.Connection, client: XeroClient, tenant_id: str, *, full: bool = False,
                      full_every_days: int | None = None, found_by: str | None = None,
                      invoice_url: str | None = None) -> SyncOutcome:
    """Read back one organisation (incrementally, or all of it when `full`, never read before, or its last full
    reconciliation was `full_every_days` or more UTC days ago), then record and resolve drift. Raises what the
    client raises (the caller decides: stop the organisation, or retry); what was read before that is kept, and
    the next read starts again from the last success.
    `invoice_url`: the template of our invoices' Url in Xero (default: ASTUTE_INVOICE_URL)."""
    ours = astute_url_matcher(invoice_url or invoice_url_template())
    sync_no, last_success_no, read_before, last_full_on, full_due = conn.execute(
        load_sql("status_sync_state"), {"tenant_id": tenant_id, "full_every_days": full_every_days}).fetchone()
    full_because, full_postponed = "asked" if full else "first read" if not read_before else "", ""
    if full_due and not full_because:
        (calls_needed,) = conn.execute(load_sql("status_sync_full_read_calls"), {"tenant_id": tenant_id}).fetchone()
        calls_left = client.calls_left_today(tenant_id)
        if calls_needed <= calls_left:
            full_because = f"due: the last was on {last_full_on or 'no record'}, every {full_every_days} day(s)"
        else:  # today's read stays incremental, so the payment picture is not left a day behind for it
            full_postponed = (f"a full reconciliation is due (the last was on {last_full_on or 'no record'}) and "
                              f"needs about {calls_needed} calls, more than the {calls_left} left of the "
                              f"organisation's day")
            log.warning("organisation %s: %s: postponed to the next sync", tenant_id, full_postponed)
    full = bool(full_because)
    marks = {} if full else dict(conn.execute(load_sql("status_sync_watermarks"), {"tenant_id": tenant_id}).fetchall())
    read_at = dt.datetime.now(dt.timezone.utc)
    conn.execute(load_sql("status_sync_session"))
    totals = _Totals()
    newest: dict[str, dt.datetime] = {}  # per kind, the newest change read: its mark once drift is recorded
    kinds = _kinds_to_read(conn, tenant_id, full)
    with _PageWriter(conn, tenant_id, read_at, ours, sync_no, totals) as pages:
        try:
            for kind in kinds:
                mark = marks.get(kind.name)
                since = None if mark is None else mark - WATERMARK_OVERLAP
                newest_of_kind = _read_kind(pages, client, tenant_id, kind, since)
                if newest_of_kind is not None:
                    newest[kind.name] = newest_of_kind
            pages.wait()
            if full:
                _confirm_unseen(conn, pages, client, tenant_id)
                pages.wait()
        except Exception as error:
            pages.settle()  # the page being written is kept (or its own error logged) before the connection is used
            conn.execute(load_sql("status_sync_failed"), {"tenant_id": tenant_id, "error": str(error)[:2000],
                                                          "calls": totals.calls})
            raise
    with conn.transaction():
        conn.execute(load_sql("status_sync_large_statements"))
        conn.execute(load_sql("status_sync_analyze"))  # joins, not nested loops, over a large read
        if full:
            conn.execute(load_sql("status_sync_mark_missing"), {"tenant_id": tenant_id})
        conn.execute(load_sql("status_sync_adopt"), {"tenant_id": tenant_id, "sync_no": sync_no})
        if full:
            conn.execute(load_sql("status_sync_full_settings"))  # for the drift checks over the organisation
        conn.execute(load_sql("drift_findings"), {"tenant_id": tenant_id, "full": full,
                                                  "last_success_no": last_success_no or 0})
        found = conn.execute(load_sql("drift_record"), {"tenant_id": tenant_id, "found_by": found_by}).rowcount
        resolved = conn.execute(load_sql("drift_resolve"), {"tenant_id": tenant_id}).rowcount
        for kind_name, mark in newest.items():  # only now: a sync that stops reads again what drift did not see
            conn.execute(load_sql("status_sync_watermark_save"),
                         {"tenant_id": tenant_id, "kind": kind_name, "modified_since": mark})
        conn.execute(load_sql("status_sync_finish"), {"tenant_id": tenant_id, "full": full, "calls": totals.calls,
                                                      "sync_no": sync_no})
    outcome = SyncOutcome(tenant_id, full, full_because, full_postponed, totals.calls, totals.read, totals.changed,
                          found, resolved)
    log.info("organisation %s: %s read, %d call(s), %d document(s) read, %d changed, %d drift found, %d resolved",
             tenant_id, f"full ({full_because})" if full else "incremental", outcome.calls, outcome.documents_read,
             outcome.documents_changed, found, resolved)
    return outcome


# How often the scheduled sync reads an organisation in full ([astute_xero] full_reconciliation_days): the only
# read that finds a document Xero no longer holds, or one Astute edited after it was exported.
FULL_RECONCILIATION_DAYS = 7
# An incremental read of a kind asks for what changed since its mark less this margin: a change Xero stamped just
# before the newest one read, but made visible after it (or within the same second), is read next time. What
# comes again changes nothing (the upsert writes only what differs).
WATERMARK_OVERLAP = dt.timedelta(minutes=1)
# A full reconciliation asks for what no page brought by id, this many a call (Xero's IDs filter; the where
# filter of credit notes grows with each id).
CONFIRM_BATCH = 100


@dataclass
class _Totals:
    calls: int = 0
    read: int = 0
    changed: int = 0


class _PageWriter:
    """Writes each page read into xero_document, with its call's API-log row, in one transaction on the sync's
    connection, in a thread of its own, while the call for the next page is on the wire: a page is held until that
    call leaves (`sent`, the client's on_send, after the pacer's statements: the writer's Python would otherwise
    hold the interpreter while they wait for it) or until nothing more is to be sent (`wait`). One page behind at
    most (`write` first waits for the page before), and in the order read. While a page is being written nothing
    else uses the connection: the caller waits (`wait`, or `settle` when the read has failed) first."""

    def __init__(self, conn: psycopg.Connection, tenant_id: str, read_at: dt.datetime,
                 ours: Callable[[str | None], bool], sync_no: int, totals: _Totals) -> None:
        self.conn, self.tenant_id, self.read_at, self.ours, self.sync_no = conn, tenant_id, read_at, ours, sync_no
        self.totals = totals
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="status-sync-pages")
        self._pending: Future[int] | None = None
        self._go = threading.Event()  # the pending page may be written

    def __enter__(self) -> "_PageWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.settle()
        self._writer.shutdown()

    def write(self, kind: DocumentKind, call: ApiCall, item_count: int,
              documents: list[tuple[Any, dt.datetime]]) -> None:
        """Once the page before is written (raises what writing it raised): this page, in the background once the
        next call leaves. `documents`: what to store of the `item_count` the call brought, each with its
        UpdatedDateUTC."""
        self.totals.calls += 1  # made, whether or not the page before can be written
        self.wait()
        self.totals.read += len(documents)
        self._go = threading.Event()
        self._pending = self._writer.submit(self._write_once_sent, self._go, kind, call, item_count, documents)

    def sent(self) -> None:
        """The next call has left: the pending page is written while Xero answers it."""
        self._go.set()

    def wait(self) -> None:
        """Every page given is written; raises what writing the last one raised."""
        self._go.set()
        pending, self._pending = self._pending, None
        if pending is not None:
            self.totals.changed += pending.result()

    def settle(self) -> None:
        """As `wait`, for a read that has already failed: the page's own error is logged, not raised over it."""
        try:
            self.wait()
        except Exception:
            log.exception("organisation %s: a page read before the read failed was not stored", self.tenant_id)

    def _write_once_sent(self, go: threading.Event, kind: DocumentKind, call: ApiCall, item_count: int,
                         documents: list[tuple[Any, dt.datetime]]) -> int:
        go.wait()
        return self._write(kind, call, item_count, documents)

    def _write(self, kind: DocumentKind, call: ApiCall, item_count: int,
               documents: list[tuple[Any, dt.datetime]]) -> int:
        with self.conn.transaction():
            self.conn.execute(load_sql("status_sync_page_settings"))
            record_api_call(self.conn, None, call, item_count=item_count)
            return _store_page(self.conn, self.tenant_id, kind, documents, self.read_at, self.ours, self.sync_no)


def _read_kind(pages: _PageWriter, client: XeroClient, tenant_id: str, kind: DocumentKind,
               since: dt.datetime | None) -> dt.datetime | None:
    """Every document of `kind` changed since `since` (all when None), stored page by page; returns the newest
    UpdatedDateUTC read (Xero's clock), None when nothing was.

    Pages are read by keyset, not by number: each read asks If-Modified-Since the second of the newest document
    the page before brought, page 1, so a document that changes meanwhile (it moves to the end of the list) shifts
    nothing not yet read. What a read brings again at the version already read is skipped. Only when more than a
    page of documents share one second is that second read by page number; a document read there that comes back
    later at a newer version may have shifted one past a page boundary, so that second is read again from its
    first page."""
    cursor, page = _second(since) if since is not None else None, 1
    known: dict[Any, dt.datetime] = {}  # what this read holds, by Xero id: at or after the cursor's second, and
    by_number: set[dt.datetime] = set()  # in the seconds read by page number
    newest: dt.datetime | None = None
    id_of = _XERO_ID[kind.name]
    while True:
        documents, call = client.documents_modified(kind, tenant_id, cursor, page, on_send=pages.sent)
        fresh, restart = [], None
        page_newest: dt.datetime | None = None
        for document in documents:
            xero_id, updated = id_of(document), _updated(document)
            if page_newest is None or updated > page_newest:
                page_newest = updated
            before = known.get(xero_id)
            if before == updated:
                continue
            if before is not None and by_number and _second(before) in by_number:
                restart = min(restart or _second(before), _second(before))
            known[xero_id] = updated
            fresh.append((document, updated))
        pages.write(kind, call, len(documents), fresh)
        if page_newest is not None and (newest is None or page_newest > newest):
            newest = page_newest
        if restart is not None:
            by_number.discard(restart)
            cursor, page = restart, 1
            continue
        if page_newest is None or len(documents) < READ_PAGE_SIZE:
            return newest
        last = _second(page_newest)
        if cursor is None or last > cursor:
            cursor, page = last, 1
            known = {i: u for i, u in known.items() if u >= cursor or (by_number and _second(u) in by_number)}
        else:  # a whole page in one second: the next page of it
            by_number.add(cursor)
            page += 1


def _confirm_unseen(conn: psycopg.Connection, pages: _PageWriter, client: XeroClient, tenant_id: str) -> None:
    """After a full read (every page written): what is ours and no page brought, asked for by id (GET
    /Invoices?IDs=, /CreditNotes by CreditNoteID) and stored as Xero has it (VOIDED or DELETED ones too: their own
    drift). Only what Xero does not return is then missing. Normally none: one query, no call."""
    with conn.transaction():
        conn.execute(load_sql("status_sync_large_statements"))
        conn.execute(load_sql("status_sync_full_settings"))
        conn.execute(load_sql("status_sync_analyze_documents"))  # before the look-ups and drift checks that follow
        unseen = conn.execute(load_sql("status_sync_unseen"), {"tenant_id": tenant_id}).fetchall()
    for kind in (INVOICE, CREDIT_NOTE):
        ids = [xero_id for name, xero_id in unseen if name == kind.name]
        for start in range(0, len(ids), CONFIRM_BATCH):
            batch = ids[start:start + CONFIRM_BATCH]
            if kind is INVOICE:
                documents, call = client.invoices_by_id(tenant_id, batch)
            else:
                documents, call = client.credit_notes_by_id(tenant_id, batch)
            pages.write(kind, call, len(documents), [(d, _updated(d)) for d in documents])


def _second(moment: dt.datetime) -> dt.datetime:
    """The whole UTC second of `moment`: what If-Modified-Since can say (xero_utc_timestamp floors the same)."""
    return moment.astimezone(dt.timezone.utc).replace(microsecond=0)


_XERO_ID: dict[str, Callable[[Any], Any]] = {INVOICE.name: attrgetter("invoice_id"),
                                             CREDIT_NOTE.name: attrgetter("credit_note_id")}


def _kinds_to_read(conn: psycopg.Connection, tenant_id: str, full: bool) -> list[DocumentKind]:
    if full:
        return [INVOICE, CREDIT_NOTE]
    (has_credit_notes,) = conn.execute(load_sql("status_sync_has_credit_notes"), {"tenant_id": tenant_id}).fetchone()
    return [INVOICE, CREDIT_NOTE] if has_credit_notes else [INVOICE]


def _store_page(conn: psycopg.Connection, tenant_id: str, kind: DocumentKind, documents: list[tuple[Any, dt.datetime]],
                read_at: dt.datetime, ours: Callable[[str | None], bool], sync_no: int) -> int:
    """One page into xero_document (COPY into the session's scratch table, then one upsert of what is ours):
    rows changed. `documents`: each with its UpdatedDateUTC (_updated)."""
    if not documents:
        return 0
    with conn.cursor().copy(load_sql("status_sync_copy")) as copy:
        copy.set_types(_COPY_TYPES[kind.name])  # each value's dumper chosen once a page, not once a row
        write_row, is_invoice = copy.write_row, kind is INVOICE
        for document, updated in documents:
            write_row((*_row(kind, document), updated, is_invoice and ours(document.url)))
    return conn.execute(load_sql("status_sync_upsert"),
                        {"tenant_id": tenant_id, "read_at": read_at, "sync_no": sync_no}).rowcount


# The Python types of _row's values as status_sync_copy's columns take them (the SDK gives ids as str, amounts as
# float; a credit note's amount credited is computed as a Decimal).
_COPY_TYPES = {
    kind.name: ["text", "text", "text", "text", "text", "text", "text", "float8", "float8", "float8", "float8",
                "numeric" if kind is CREDIT_NOTE else "float8", "date", "date", "date", "timestamptz", "bool"]
    for kind in (INVOICE, CREDIT_NOTE)
}


def _row(kind: DocumentKind, d: Any) -> tuple:
    """What xero_document keeps of one of Xero's invoices or credit notes (the SDK's model), but its
    UpdatedDateUTC (_updated) and whether it is ours."""
    payments = [p.date for p in (d.payments or []) if getattr(p, "date", None)]
    contact = d.contact
    if kind is INVOICE:
        xero_id, number = d.invoice_id, d.invoice_number
        due, paid, credited = d.amount_due, d.amount_paid, d.amount_credited
        due_date, fully_paid_on = d.due_date, d.fully_paid_on_date
    else:
        xero_id, number = d.credit_note_id, d.credit_note_number
        due, paid = d.remaining_credit, None
        credited = (Decimal(str(d.total)) - Decimal(str(d.remaining_credit))
                    if d.total is not None and d.remaining_credit is not None else None)
        due_date, fully_paid_on = None, d.fully_paid_on_date  # Xero gives it on a PAID credit note too
    return (
        kind.name, xero_id, number, enum_value(d.status),
        contact.contact_id if contact and contact.contact_id else None, contact.name if contact else None,
        enum_value(d.line_amount_types), d.sub_total, d.total, due, paid, credited, due_date, fully_paid_on,
        max(payments) if payments else None,
    )


def _updated(document: Any) -> dt.datetime:
    """UpdatedDateUTC in the standard library's UTC (the SDK's own tzinfo makes every comparison call Python)."""
    updated = document.updated_date_utc
    return updated.astimezone(dt.timezone.utc) if updated.tzinfo else updated.replace(tzinfo=dt.timezone.utc)

