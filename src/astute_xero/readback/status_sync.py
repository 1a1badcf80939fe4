"""Reading back from one Xero organisation what happened to the exported documents, and what disagrees.

Incremental: only what changed since the newest change the last successful read saw (If-Modified-Since), a
page of 1,000 at a time (Xero's largest), oldest change first, every call paced within the organisation's
budget (shared with the export: the same pacer). Each page goes to xero_sync.xero_document in one COPY and
one set-based upsert, so a million documents stream through without being held. A full reconciliation reads
every document instead, and is the only read that can tell that Xero no longer holds one.

Which documents are ours does not depend on the Xero app that reads them (an organisation may move to a new
app or a Custom Connection): every sales invoice is read, and kept when Astute exported it (its Xero id is in
xero_sync) or when it carries an Astute invoice's link as its Url (one unknown to Astute is drift); credit
notes, which have no Url, when Astute exported them. Invoices keyed in by hand go through the page's scratch
table and no further. Credit notes are read when the organisation has any Astute exported (an organisation
without ours costs no call), and always by a full reconciliation.

Drift (xero_sync.drift) is recorded once while it lasts, with what to do, and resolved when a later read finds
Astute and Xero agreeing again; nothing is ever changed on either side to make them agree.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from itertools import count
from typing import Any

import psycopg

from astute_xero.export.chunk_export import invoice_url_template
from astute_xero.export.documents import CREDIT_NOTE, INVOICE, DocumentKind
from astute_xero.export.reconciliation import astute_url_matcher
from astute_xero.export.sync_state import record_api_call
from astute_xero.sql import load_sql
from astute_xero.xero.client import READ_PAGE_SIZE, XeroClient, enum_value

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncOutcome:
    tenant_id: str
    full: bool
    calls: int
    documents_read: int
    documents_changed: int
    drift_found: int
    drift_resolved: int


def sync_organisation(conn: psycopg.Connection, client: XeroClient, tenant_id: str, *, full: bool = False,
                      found_by: str | None = None, invoice_url: str | None = None) -> SyncOutcome:
    """Read back one organisation (incrementally, or all of it when `full` or never read before), then record
    and resolve drift. Raises what the client raises (the caller decides: stop the organisation, or retry);
    what was read before that is kept, and the next read starts again from the last success.
    `invoice_url`: the template of our invoices' Url in Xero (default: ASTUTE_INVOICE_URL)."""
    ours = astute_url_matcher(invoice_url or invoice_url_template())
    state = conn.execute(load_sql("status_sync_state"), {"tenant_id": tenant_id}).fetchone()
    since = None if full or state is None else state[0]
    full = since is None
    read_at = dt.datetime.now(dt.timezone.utc)
    conn.execute(load_sql("status_sync_session"))
    calls = read = changed = 0
    newest = since
    try:
        for kind in _kinds_to_read(conn, tenant_id, full):
            for page in count(1):
                documents, call = client.documents_modified(kind, tenant_id, since, page)
                calls += 1
                with conn.transaction():
                    record_api_call(conn, None, call, item_count=len(documents))
                    changed += _store_page(conn, tenant_id, kind, documents, read_at, ours)
                read += len(documents)
                newest = max([newest, *(_updated(d) for d in documents)], key=lambda t: t or _EPOCH)
                if len(documents) < READ_PAGE_SIZE:
                    break
    except Exception as error:
        conn.execute(load_sql("status_sync_failed"), {"tenant_id": tenant_id, "error": str(error)[:2000],
                                                      "calls": calls})
        raise
    with conn.transaction():
        conn.execute(load_sql("status_sync_analyze"))  # joins, not nested loops, over a large read
        if full:
            conn.execute(load_sql("status_sync_mark_missing"), {"tenant_id": tenant_id})
        conn.execute(load_sql("drift_findings"), {"tenant_id": tenant_id, "full": full})
        found = conn.execute(load_sql("drift_record"), {"tenant_id": tenant_id, "found_by": found_by}).rowcount
        resolved = conn.execute(load_sql("drift_resolve"), {"tenant_id": tenant_id, "full": full}).rowcount
        conn.execute(load_sql("status_sync_finish"), {"tenant_id": tenant_id, "modified_since": newest, "full": full,
                                                      "calls": calls})
    outcome = SyncOutcome(tenant_id, full, calls, read, changed, found, resolved)
    log.info("organisation %s: %s read, %d call(s), %d document(s) read, %d changed, %d drift found, %d resolved",
             tenant_id, "full" if full else "incremental", calls, read, changed, found, resolved)
    return outcome


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _kinds_to_read(conn: psycopg.Connection, tenant_id: str, full: bool) -> list[DocumentKind]:
    if full:
        return [INVOICE, CREDIT_NOTE]
    (has_credit_notes,) = conn.execute(load_sql("status_sync_has_credit_notes"), {"tenant_id": tenant_id}).fetchone()
    return [INVOICE, CREDIT_NOTE] if has_credit_notes else [INVOICE]


def _store_page(conn: psycopg.Connection, tenant_id: str, kind: DocumentKind, documents: list[Any],
                read_at: dt.datetime, ours: Callable[[str | None], bool]) -> int:
    """One page into xero_document (COPY into the session's scratch table, then one upsert of what is ours):
    rows changed."""
    if not documents:
        return 0
    with conn.cursor().copy(load_sql("status_sync_copy")) as copy:
        for document in documents:
            copy.write_row((*_row(kind, document), kind is INVOICE and ours(getattr(document, "url", None))))
    return conn.execute(load_sql("status_sync_upsert"), {"tenant_id": tenant_id, "read_at": read_at}).rowcount


def _row(kind: DocumentKind, d: Any) -> tuple:
    """What xero_document keeps of one of Xero's invoices or credit notes (the SDK's model)."""
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
        kind.name, str(xero_id), number, enum_value(d.status),
        str(contact.contact_id) if contact and contact.contact_id else None, contact.name if contact else None,
        enum_value(d.line_amount_types), d.sub_total, d.total, due, paid, credited, due_date, fully_paid_on,
        max(payments) if payments else None, _updated(d),
    )


def _updated(document: Any) -> dt.datetime:
    updated = document.updated_date_utc
    return updated if updated.tzinfo else updated.replace(tzinfo=dt.timezone.utc)

