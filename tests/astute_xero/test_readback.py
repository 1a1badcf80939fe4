"""The read-back tells the truth (issue 20): no change in Xero missed, whatever the order of reads and pages,
and no drift that is not there. Real PostgreSQL, the sandbox over HTTP; "a person in Xero" acts between two of
the read's requests (the sandbox's between_requests switch)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import psycopg
import pytest

from astute_xero.export.chunk_export import ChunkOutcomeUnknown, export_chunk
from astute_xero.operations.actions import remove_contact_links, reset_for_export
from astute_xero.readback.status_sync import sync_organisation
from devtools.astute_data import Line
from tests.astute_xero.conftest import TENANT
from tests.astute_xero.test_reconciliation import shift_attempts_back, unnumbered

INVOICES_PATH = "/api.xro/2.0/Invoices"


def one_line(amount: str) -> list[Line]:
    return [Line(quantity=Decimal("1"), unit_amount=Decimal(amount))]  # 10 % GST on top: total = amount x 1.1


def xero_invoice_id(pipeline, invoice_id: int) -> str:
    (xero_id,) = pipeline.db.execute("SELECT xero_invoice_id::text FROM xero_sync.invoice_export WHERE invoice_id = %s",
                                     (invoice_id,)).fetchone()
    return xero_id


def payment(pipeline, invoice_id: int) -> list[tuple]:
    return pipeline.db.execute("SELECT payment_state, xero_status, amount_due, amount_paid FROM xero_sync.invoice_payment "
                               "WHERE invoice_id = %s", (invoice_id,)).fetchall()


def open_drift(pipeline) -> list[tuple]:
    return pipeline.db.execute("SELECT kind, astute_id, drift FROM xero_sync.drift WHERE resolved_at IS NULL "
                               "ORDER BY kind, astute_id, drift").fetchall()


def exported_and_read(pipeline):
    """The documents written so far exported and read back in full; then an hour passes in Xero. The sandbox."""
    pipeline.data.flush()
    pipeline.run()
    sync(pipeline, full=True)
    backend = pipeline.xero.backend
    backend.advance(3600)
    return backend


def pages_answered(backend) -> list:
    return [r for r in backend.requests if r.method == "GET" and r.path == INVOICES_PATH and r.status == 200]


def sync(pipeline, **options):
    return sync_organisation(pipeline.db, pipeline.client, TENANT, **options)


# ---------------------------------------------------------------- finding 1
def test_issue_20_finding_1_an_invoice_paid_between_the_invoice_and_the_credit_note_read_is_read_next_time(pipeline):
    customer = pipeline.data.customer("Harbour Constructions")
    paid_between = pipeline.data.invoice(pipeline.entity, customer, number="WM-1", lines=one_line("100"))
    credited = pipeline.data.invoice(pipeline.entity, customer, number="WM-2", lines=one_line("200"))
    standalone = pipeline.data.credit_note(pipeline.entity, customer, number="CN-WM", lines=one_line("50"))
    pipeline.data.flush()
    pipeline.run()
    (cn_xero_id,) = pipeline.db.execute("SELECT xero_credit_note_id::text FROM xero_sync.credit_note_export "
                                        "WHERE credit_note_id = %s", (standalone,)).fetchone()
    sync(pipeline, full=True)
    backend = pipeline.xero.backend
    backend.advance(3600)
    backend.record_payment(TENANT, xero_invoice_id(pipeline, credited), "10.00", dt.date(2026, 7, 1))
    backend.advance(60)

    def finance_in_xero() -> None:  # after the invoice read, before the credit-note read
        backend.record_payment(TENANT, xero_invoice_id(pipeline, paid_between), "110.00", dt.date(2026, 7, 2))
        backend.advance(5)
        backend.allocate_credit_note(TENANT, cn_xero_id, xero_invoice_id(pipeline, credited), "55.00",
                                     dt.date(2026, 7, 2))

    backend.faults.between_requests(finance_in_xero, path_prefix=INVOICES_PATH, method="GET")
    first = sync(pipeline)
    assert not first.full and backend.faults.injected.get("between_requests") == 1
    backend.advance(3600)
    sync(pipeline)
    backend.advance(3600)
    sync(pipeline)
    assert payment(pipeline, paid_between) == [("paid", "PAID", Decimal("0.00"), Decimal("110.00"))]
    # Where each read stands is Xero's newest change of that kind, never our clock.
    marks = dict(pipeline.db.execute(
        "SELECT kind, modified_since FROM xero_sync.status_sync_watermark WHERE tenant_id = %s", (TENANT,)))
    newest = dict(pipeline.db.execute(
        "SELECT kind, max(updated_in_xero) FROM xero_sync.xero_document WHERE tenant_id = %s GROUP BY kind", (TENANT,)))
    assert marks == newest


def test_issue_20_finding_1_a_sync_stopped_after_the_invoice_read_reads_those_invoices_again(pipeline):
    customer = pipeline.data.customer("Stopped Pty Ltd")
    voided = pipeline.data.invoice(pipeline.entity, customer, number="ST-1", lines=one_line("10"))
    paid = pipeline.data.invoice(pipeline.entity, customer, number="ST-2", lines=one_line("20"))
    pipeline.data.credit_note(pipeline.entity, customer, number="CN-ST", lines=one_line("5"))
    backend = exported_and_read(pipeline)
    backend.void_document(TENANT, "invoice", xero_invoice_id(pipeline, voided))
    backend.advance(120)
    backend.record_payment(TENANT, xero_invoice_id(pipeline, paid), "1.00", dt.date(2026, 7, 1))
    backend.faults.fail_next(1, status=400, path_prefix="/api.xro/2.0/CreditNotes", method="GET")
    with pytest.raises(Exception):
        sync(pipeline)  # the invoices were read, the credit notes were not: no drift was recorded
    backend.advance(3600)
    sync(pipeline)
    assert open_drift(pipeline) == [("invoice", voided, "voided_in_xero")]


# ---------------------------------------------------------------- finding 2
def test_issue_20_finding_2_a_document_that_moves_while_pages_are_read_skips_nothing_and_is_never_missing(pipeline):
    customer = pipeline.data.customer("Paging Pty Ltd")
    ids = [pipeline.data.invoice(pipeline.entity, customer, number=f"PG-{n:04d}", lines=one_line("10"))
           for n in range(1100)]
    pipeline.data.flush()
    pipeline.run()
    backend = pipeline.xero.backend
    xero_ids = dict(pipeline.db.execute("SELECT invoice_id, xero_invoice_id::text FROM xero_sync.invoice_export"))
    assert len(xero_ids) == 1100
    backend.advance(3600)

    # A full reconciliation while finance records a payment on an invoice of the first page: that invoice moves
    # to the end of the list, every later one one place back, and the one at the first place of page 2 was skipped.
    def pay(invoice_id: int, amount: str) -> None:
        backend.advance(1)
        backend.record_payment(TENANT, xero_ids[invoice_id], amount, dt.date(2026, 7, 1))

    backend.faults.between_requests(lambda: pay(ids[3], "1.00"), path_prefix=INVOICES_PATH, method="GET")
    outcome = sync(pipeline, full=True)
    assert outcome.full and backend.faults.injected.get("between_requests") == 1
    assert [d for d in open_drift(pipeline) if d[2] == "missing_in_xero"] == [], "nothing is missing from Xero"
    (stored, missing) = pipeline.db.execute(
        "SELECT count(*), count(missing_since) FROM xero_sync.xero_document WHERE kind = 'invoice'").fetchone()
    assert (stored, missing) == (1100, 0)

    # A day of 1,100 payments, and one more payment while the day's changes are read.
    backend.advance(3600)
    for invoice_id in ids:
        backend.record_payment(TENANT, xero_ids[invoice_id], "2.00", dt.date(2026, 7, 2))
    backend.faults.between_requests(lambda: pay(ids[7], "3.00"), path_prefix=INVOICES_PATH, method="GET")
    outcome = sync(pipeline)
    assert not outcome.full and backend.faults.injected.get("between_requests") == 2
    stale = pipeline.db.execute(
        "SELECT p.invoice_number, p.amount_paid FROM xero_sync.invoice_payment p "
        "WHERE p.amount_paid IS DISTINCT FROM CASE p.invoice_id WHEN %(third)s THEN 3.00 WHEN %(seventh)s THEN 5.00 "
        "ELSE 2.00 END ORDER BY 1",
        {"third": ids[3], "seventh": ids[7]}).fetchall()
    assert stale == [], "every change of the day is read"


def test_issue_20_finding_2_more_than_a_page_changed_in_one_second_and_one_moving_mid_read_skips_nothing(
        pipeline, monkeypatch):
    """A batch payment stamps 1,100 invoices in the same second: a keyset read cannot split that second, so it is
    read by page number; one of them paid again between its pages moves out, the rest shift back a place."""
    customer = pipeline.data.customer("Batch Pty Ltd")
    ids = [pipeline.data.invoice(pipeline.entity, customer, number=f"BP-{n:04d}", lines=one_line("10"))
           for n in range(1100)]
    pipeline.data.flush()
    pipeline.run()
    sync(pipeline, full=True)
    backend = pipeline.xero.backend
    xero_ids = dict(pipeline.db.execute("SELECT invoice_id, xero_invoice_id::text FROM xero_sync.invoice_export"))
    backend.advance(3600)
    second = float(int(backend.clock()))
    with monkeypatch.context() as frozen:  # Xero's batch payment: one second for all of them
        frozen.setattr(backend.clock, "_source", lambda: second - backend.clock._offset + 0.5)
        for invoice_id in ids:
            backend.record_payment(TENANT, xero_ids[invoice_id], "2.00", dt.date(2026, 7, 2))
    backend.advance(5)

    def pay_again() -> None:
        backend.advance(1)
        backend.record_payment(TENANT, xero_ids[ids[3]], "3.00", dt.date(2026, 7, 3))

    # The read hops from its mark less a minute to that second (a page, all of it in that second), then reads
    # the second by page number: the payment lands between its page 1 and page 2.
    backend.faults.between_requests(pay_again, after=2, path_prefix=INVOICES_PATH, method="GET")
    outcome = sync(pipeline)
    assert backend.faults.injected.get("between_requests") == 1
    stale = pipeline.db.execute(
        "SELECT invoice_number, amount_paid FROM xero_sync.invoice_payment "
        "WHERE amount_paid IS DISTINCT FROM CASE invoice_id WHEN %s THEN 5.00 ELSE 2.00 END ORDER BY 1",
        (ids[3],)).fetchall()
    assert stale == [], "every invoice of the batch is read"
    # How many calls that takes depends on where in the second the invoice paid again sat (before or after the
    # page boundary): 3 or 4. Every one of the batch is read either way.
    assert outcome.documents_read >= 1100 and outcome.calls >= 3


def test_a_page_that_cannot_be_written_stops_the_read_and_the_next_sync_reads_it_again(pipeline):
    """Pages are written in a thread of their own while Xero answers the next call: a page the database refuses
    stops the read at the next page (the call for it already made), keeps nothing of itself, moves no mark, and
    the connection is left usable; the next sync reads the day again."""
    customer = pipeline.data.customer("Writer Pty Ltd")
    ids = [pipeline.data.invoice(pipeline.entity, customer, number=f"PW-{n:04d}", lines=one_line("10"))
           for n in range(1100)]
    backend = exported_and_read(pipeline)
    xero_ids = dict(pipeline.db.execute("SELECT invoice_id, xero_invoice_id::text FROM xero_sync.invoice_export"))
    for invoice_id in ids:  # a day's payments: 2 pages of changes, PW-0003's on the first
        backend.record_payment(TENANT, xero_ids[invoice_id], "2.00", dt.date(2026, 7, 2))
    backend.advance(60)
    pipeline.db.execute("""
        CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'could not extend file (test)'; END $$;
        CREATE TRIGGER refuse BEFORE UPDATE ON xero_sync.xero_document
        FOR EACH ROW WHEN (NEW.number = 'PW-0003') EXECUTE FUNCTION pg_temp.refuse();""")
    answered_before = len(pages_answered(backend))

    with pytest.raises(psycopg.errors.RaiseException, match="could not extend file"):
        sync(pipeline)

    assert len(pages_answered(backend)) - answered_before == 2, "page 2 was asked meanwhile"
    (error, calls) = pipeline.db.execute("SELECT last_error, last_calls FROM xero_sync.status_sync").fetchone()
    assert "could not extend file" in error and calls == 2
    paid = pipeline.db.execute("SELECT count(*) FROM xero_sync.invoice_payment WHERE amount_paid = 2.00").fetchone()
    assert paid == (0,), "nothing of the refused page (nor of the page after it) is kept"

    pipeline.db.execute("DROP TRIGGER refuse ON xero_sync.xero_document")
    outcome = sync(pipeline)
    assert outcome.documents_read == 1100 and outcome.drift_found == 0
    paid = pipeline.db.execute("SELECT count(*) FROM xero_sync.invoice_payment WHERE amount_paid = 2.00").fetchone()
    assert paid == (1100,), "the next sync read the day again"


def _spend_the_day(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE xero_sync.rate_budget SET day_blocked_until = now() + interval '1 hour' "
                     "WHERE tenant_id = %s", (TENANT,))


@pytest.mark.parametrize("next_call", ["answered 400", "never sent"])
def test_the_page_before_a_failed_call_is_kept_whole_and_the_next_sync_reads_on(pipeline, database_url, next_call):
    """The writer is one page behind the reads, and writes a page while the call for the next is on the wire: when
    that call is answered 400, or never leaves (the organisation's day found spent before it), page 1 is kept whole
    before the failure is recorded on the same connection, no mark moves, and the next sync reads the day again,
    changing only what page 1 did not hold."""
    customer = pipeline.data.customer("Behind Pty Ltd")
    ids = [pipeline.data.invoice(pipeline.entity, customer, number=f"PB-{n:04d}", lines=one_line("10"))
           for n in range(1100)]
    backend = exported_and_read(pipeline)
    xero_ids = dict(pipeline.db.execute("SELECT invoice_id, xero_invoice_id::text FROM xero_sync.invoice_export"))
    for invoice_id in ids:  # a day's payments: 2 pages of changes
        backend.record_payment(TENANT, xero_ids[invoice_id], "2.00", dt.date(2026, 7, 2))
    backend.advance(60)
    if next_call == "answered 400":
        backend.faults.between_requests(
            lambda: backend.faults.fail_next(1, status=400, path_prefix=INVOICES_PATH, method="GET"), after=1)
    else:
        backend.faults.between_requests(lambda: _spend_the_day(database_url), after=1)
    answered_before = len(pages_answered(backend))

    with pytest.raises(Exception, match="400" if next_call == "answered 400" else "day"):
        sync(pipeline)

    assert len(pages_answered(backend)) - answered_before == 1
    (error, calls) = pipeline.db.execute("SELECT last_error, last_calls FROM xero_sync.status_sync").fetchone()
    assert error and calls == 1
    paid = pipeline.db.execute("SELECT count(*) FROM xero_sync.invoice_payment WHERE amount_paid = 2.00").fetchone()
    assert paid == (1000,), "page 1 was written whole"
    pipeline.db.execute("UPDATE xero_sync.rate_budget SET day_blocked_until = NULL")
    outcome = sync(pipeline)
    assert (outcome.documents_read, outcome.documents_changed, outcome.drift_found) == (1100, 100, 0)
    paid = pipeline.db.execute("SELECT count(*) FROM xero_sync.invoice_payment WHERE amount_paid = 2.00").fetchone()
    assert paid == (1100,)


def test_issue_20_finding_2_a_full_reconciliation_confirms_by_id_what_the_pages_did_not_bring(pipeline):
    customer = pipeline.data.customer("Confirm Pty Ltd")
    kept = pipeline.data.invoice(pipeline.entity, customer, number="CF-1", lines=one_line("10"))
    gone = pipeline.data.invoice(pipeline.entity, customer, number="CF-2", lines=one_line("20"))
    pipeline.data.flush()
    pipeline.run()
    sync(pipeline, full=True)
    backend = pipeline.xero.backend
    backend.forget_document(TENANT, "invoice", xero_invoice_id(pipeline, gone))  # restored from a backup
    sync(pipeline, full=True)
    assert open_drift(pipeline) == [("invoice", gone, "missing_in_xero")]
    # What a page did not bring was asked for by id before being called missing.
    by_id = [r for r in backend.requests if r.method == "GET" and r.path.endswith("/Invoices") and "IDs" in r.query]
    assert by_id and xero_invoice_id(pipeline, gone) in by_id[-1].query["IDs"].lower()
    assert xero_invoice_id(pipeline, kept) not in by_id[-1].query["IDs"].lower()


# ---------------------------------------------------------------- finding 3
def test_issue_20_finding_3_voided_in_xero_and_then_in_astute_closes_the_drift(pipeline):
    customer = pipeline.data.customer("Void Pty Ltd")
    voided = pipeline.data.invoice(pipeline.entity, customer, number="VD-1", lines=one_line("10"))
    backend = exported_and_read(pipeline)
    backend.void_document(TENANT, "invoice", xero_invoice_id(pipeline, voided))
    sync(pipeline)
    assert open_drift(pipeline) == [("invoice", voided, "voided_in_xero")]
    backend.advance(3600)
    pipeline.db.execute("UPDATE astute.invoice SET status = 'Void' WHERE id = %s", (voided,))  # as the advice says
    sync(pipeline)
    assert open_drift(pipeline) == []


def test_issue_20_finding_3_unknown_to_astute_while_sending_closes_on_adoption_and_shows_its_payment(pipeline):
    earlier = pipeline.data.invoice(pipeline.entity, pipeline.data.customer("Earlier Pty Ltd"), number="AD-0",
                                    lines=one_line("10"))
    pipeline.data.flush()
    pipeline.run()
    (invoice,) = unnumbered(pipeline, 1)
    (key,) = pipeline.plan()
    backend = pipeline.xero.backend
    backend.faults.drop_after_commit_next(1)  # Xero created it, the answer was lost: the invoice is `sending`
    with pytest.raises(ChunkOutcomeUnknown):
        export_chunk(pipeline.db, pipeline.client, key)
    sync(pipeline, full=True)
    assert [d[2] for d in open_drift(pipeline)] == ["unknown_to_astute"]
    backend.advance(3600)
    backend.record_payment(TENANT, xero_invoice_id(pipeline, earlier), "1.00", dt.date(2026, 7, 1))
    sync(pipeline)  # a later change: the unknown invoice, unchanged in Xero, is not read again incrementally
    backend.advance(3600)
    shift_attempts_back(pipeline, 1)
    assert export_chunk(pipeline.db, pipeline.client, key).reconciled == 1  # the next export adopts it
    backend.advance(3600)
    sync(pipeline)
    assert open_drift(pipeline) == []
    assert [row[1] for row in payment(pipeline, invoice)] == ["AUTHORISED"], "in the payment views"


def test_issue_20_finding_3_a_reset_or_relinked_document_closes_its_drift_and_is_shown_once(pipeline):
    customer = pipeline.data.customer("Merge Away Ltd")
    other = pipeline.data.customer("Merged Into Ltd")
    reset = pipeline.data.invoice(pipeline.entity, pipeline.data.customer("Reset Pty Ltd"), number="RL-1",
                                  lines=one_line("10"))
    merged = pipeline.data.invoice(pipeline.entity, customer, number="RL-2", lines=one_line("20"))
    pipeline.data.invoice(pipeline.entity, other, number="RL-3", lines=one_line("30"))
    backend = exported_and_read(pipeline)
    old_xero_id = xero_invoice_id(pipeline, reset)
    backend.forget_document(TENANT, "invoice", old_xero_id)  # the organisation restored from a backup
    contacts = {c["Name"]: c["ContactID"] for c in backend.contacts(TENANT)}
    backend.merge_contacts(TENANT, contacts["Merge Away Ltd"], contacts["Merged Into Ltd"])
    sync(pipeline, full=True)
    assert {(d[1], d[2]) for d in open_drift(pipeline)} == {(reset, "missing_in_xero"), (merged, "contact_changed")}

    # Finance resets the missing one (sent again: a new Xero id) and removes the merged customer's link.
    assert reset_for_export(pipeline.db, invoice_ids=[reset]).reset
    remove_contact_links(pipeline.db, customer_id=customer, tenant_id=TENANT)
    backend.advance(3600)
    pipeline.run()
    assert xero_invoice_id(pipeline, reset) != old_xero_id
    backend.advance(3600)
    sync(pipeline)
    assert open_drift(pipeline) == []
    assert [row[1] for row in payment(pipeline, reset)] == ["AUTHORISED"], "the new copy, shown once"


# ---------------------------------------------------------------- finding 6
def test_issue_20_finding_6_an_incremental_read_compares_with_astute_what_xero_changed_that_drift_is_about(pipeline):
    """A day's read is mostly payments, and a payment changes nothing a drift compares: comparing each paid invoice
    with its Astute lines cost a page read or more per document at a million (make bench). What Xero changed that
    drift is about is compared at once; Astute's own later edit of an exported invoice waits for the full
    reconciliation, which compares everything."""
    customer = pipeline.data.customer("Daily Pty Ltd")
    paid = pipeline.data.invoice(pipeline.entity, customer, number="DY-1", lines=one_line("100"))
    edited = pipeline.data.invoice(pipeline.entity, customer, number="DY-2", lines=one_line("200"))
    voided = pipeline.data.invoice(pipeline.entity, customer, number="DY-3", lines=one_line("300"))
    backend = exported_and_read(pipeline)
    pipeline.db.execute("UPDATE astute.invoice_line SET unit_amount = 101 WHERE invoice_id = %s", (paid,))
    backend.record_payment(TENANT, xero_invoice_id(pipeline, paid), "10.00", dt.date(2026, 7, 1))
    backend.edit_document_lines(TENANT, "invoice", xero_invoice_id(pipeline, edited), [
        {"Description": "Edited in Xero", "Quantity": 1, "UnitAmount": 210, "AccountCode": "200", "TaxType": "OUTPUT"}])
    backend.void_document(TENANT, "invoice", xero_invoice_id(pipeline, voided))

    outcome = sync(pipeline)

    assert outcome.documents_changed == 3, "all three read and stored"
    assert open_drift(pipeline) == [("invoice", edited, "total_differs"), ("invoice", voided, "voided_in_xero")]
    assert payment(pipeline, paid)[0][3] == Decimal("10.00"), "the payment read back"
    backend.advance(3600)
    sync(pipeline, full=True)
    assert open_drift(pipeline) == [("invoice", paid, "total_differs"), ("invoice", edited, "total_differs"),
                                    ("invoice", voided, "voided_in_xero")]


def test_the_scheduled_sync_reads_in_full_once_its_days_are_up_and_finds_what_only_a_full_read_can(pipeline):
    """[astute_xero] full_reconciliation_days: a weekly full read finds Astute's own later edit of an exported
    invoice without anyone remembering to ask. Days are UTC dates by the database's clock (which wrote the last
    one), so a daily 06:00 run is due on the seventh day whatever time the last full read finished."""
    customer = pipeline.data.customer("Weekly Pty Ltd")
    edited = pipeline.data.invoice(pipeline.entity, customer, number="WK-1", lines=one_line("100"))
    backend = exported_and_read(pipeline)
    pipeline.db.execute("UPDATE astute.invoice_line SET unit_amount = 101 WHERE invoice_id = %s", (edited,))

    def last_full_days_ago(days: int, at: str) -> None:
        pipeline.db.execute("UPDATE xero_sync.status_sync SET last_full_at = "
                            "((now() AT TIME ZONE 'UTC')::date - %s + %s::time) AT TIME ZONE 'UTC'", (days, at))

    last_full_days_ago(6, "00:00:01")  # six days and most of a seventh: not yet
    outcome = sync(pipeline, full_every_days=7)
    assert (outcome.full, outcome.full_because, open_drift(pipeline)) == (False, "", [])

    last_full_days_ago(7, "23:59:59")  # the seventh UTC day, less than 7 x 24 hours ago
    backend.advance(3600)
    outcome = sync(pipeline, full_every_days=7)
    assert outcome.full and outcome.full_because.startswith("due: the last was on ")
    assert open_drift(pipeline) == [("invoice", edited, "total_differs")]
    (last_full,) = pipeline.db.execute("SELECT (now() AT TIME ZONE 'UTC')::date - (last_full_at AT TIME ZONE 'UTC')::date "
                                       "FROM xero_sync.status_sync").fetchone()
    assert last_full == 0, "the full read is the new starting point"

    last_full_days_ago(30, "12:00:00")
    assert not sync(pipeline, full_every_days=None).full, "without a schedule, only when asked"

    # Due, but the organisation's day has fewer calls left than a full read takes (an export had most of it): the
    # day's read stays incremental (the payment picture is not left behind) and the full one waits, saying why.
    backend.record_payment(TENANT, xero_invoice_id(pipeline, edited), "5.00", dt.date(2026, 7, 3))
    pipeline.db.execute("UPDATE xero_sync.rate_budget SET day_calls = 4998 WHERE tenant_id = %s", (TENANT,))
    outcome = sync(pipeline, full_every_days=7)
    assert (outcome.full, outcome.calls) == (False, 1)
    assert "needs about 3 calls, more than the 2 left of the organisation's day" in outcome.full_postponed
    assert payment(pipeline, edited)[0][3] == Decimal("5.00"), "the day's payment read all the same"
    pipeline.db.execute("UPDATE xero_sync.rate_budget SET day_calls = 0 WHERE tenant_id = %s", (TENANT,))
    outcome = sync(pipeline, full_every_days=7)
    assert outcome.full and not outcome.full_postponed, "done when the calls are there"


def test_a_full_read_leaves_the_planner_knowing_how_many_documents_it_read(pipeline):
    """The drift checks after a full read join xero_document; planned from statistics taken while it was empty
    (autovacuum off, or not yet round), they ran nested loops for minutes at 20,000 documents (make bench)."""
    from astute_xero.readback.status_sync import sync_organisation

    customer = pipeline.data.customer("Harbour Constructions")
    for n in range(60):
        pipeline.data.invoice(pipeline.entity, customer, number=f"PL-{n}")
    pipeline.data.flush()
    pipeline.db.execute("ANALYZE xero_sync.xero_document")  # as a new installation has it: empty
    pipeline.run()
    sync_organisation(pipeline.db, pipeline.client, TENANT, full=True)
    (estimated,) = pipeline.db.execute(
        "SELECT reltuples FROM pg_class WHERE oid = 'xero_sync.xero_document'::regclass").fetchone()
    assert estimated == 60
